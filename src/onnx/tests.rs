//! Unit tests of the loader's tensor decoding and of `Constant` nodes,
//! on messages built with the schema itself.

use super::import::evaluate_model;
use super::load::{decode_model, tensor_from_proto};
use super::proto::*;
use super::tensor::Data;
use super::ImportOptions;
use prost::Message;

fn tensor(dims: &[i64], dtype: i32) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: dtype,
        name: "t".into(),
        ..Default::default()
    }
}

#[test]
fn typed_and_raw_fields_decode() {
    let mut t = tensor(&[2], data_type::FLOAT);
    t.float_data = vec![1.5, -2.0];
    assert_eq!(
        tensor_from_proto(&t, None, "t").unwrap().data(),
        &Data::F(vec![1.5, -2.0])
    );
    let mut t = tensor(&[2], data_type::FLOAT);
    t.raw_data = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(
        tensor_from_proto(&t, None, "t").unwrap().data(),
        &Data::F(vec![1.5, -2.0])
    );
    // FLOAT16 and BFLOAT16 as bit patterns in int32_data, and raw.
    let mut t = tensor(&[2], data_type::FLOAT16);
    t.int32_data = vec![0x3e00, 0xc000]; // 1.5, -2.0
    assert_eq!(
        tensor_from_proto(&t, None, "t").unwrap().data(),
        &Data::F(vec![1.5, -2.0])
    );
    let mut t = tensor(&[2], data_type::BFLOAT16);
    t.int32_data = vec![0x3fc0, 0xc000];
    assert_eq!(
        tensor_from_proto(&t, None, "t").unwrap().data(),
        &Data::F(vec![1.5, -2.0])
    );
    let mut t = tensor(&[2], data_type::FLOAT16);
    t.raw_data = vec![0x00, 0x3e, 0x00, 0xc0];
    assert_eq!(
        tensor_from_proto(&t, None, "t").unwrap().data(),
        &Data::F(vec![1.5, -2.0])
    );
    let mut t = tensor(&[1], data_type::DOUBLE);
    t.double_data = vec![0.25];
    assert_eq!(
        tensor_from_proto(&t, None, "t").unwrap().data(),
        &Data::F(vec![0.25])
    );
    let mut t = tensor(&[3], data_type::INT64);
    t.int64_data = vec![-1, 0, 7];
    assert_eq!(
        tensor_from_proto(&t, None, "t").unwrap().data(),
        &Data::I(vec![-1, 0, 7])
    );
    let mut t = tensor(&[2], data_type::INT8);
    t.raw_data = vec![0xff, 0x02];
    assert_eq!(
        tensor_from_proto(&t, None, "t").unwrap().data(),
        &Data::I(vec![-1, 2])
    );
    let mut t = tensor(&[], data_type::INT32);
    t.int32_data = vec![42];
    let s = tensor_from_proto(&t, None, "t").unwrap();
    assert_eq!((s.dims(), s.data()), (&[][..], &Data::I(vec![42])));
}

#[test]
fn malformed_tensors_are_errors_naming_them() {
    let err = |t: TensorProto| tensor_from_proto(&t, None, "w").unwrap_err().to_string();
    let mut t = tensor(&[3], data_type::FLOAT);
    t.float_data = vec![1.0];
    assert!(err(t).contains("tensor `w`"));
    let mut t = tensor(&[2], data_type::FLOAT);
    t.raw_data = vec![0; 7];
    assert!(err(t).contains("raw_data has 7 bytes"));
    assert!(err(tensor(&[-1], data_type::FLOAT)).contains("negative dim"));
    // Absurd dims are refused before anything is allocated.
    assert!(err(tensor(&[1 << 40, 1 << 40], data_type::FLOAT)).contains("more than"));
    assert!(err(tensor(&[1], data_type::STRING)).contains("STRING"));
    let mut t = tensor(&[1], data_type::FLOAT);
    t.segment = Some(Segment { begin: 0, end: 1 });
    assert!(err(t).contains("segmented"));
    let mut t = tensor(&[1], data_type::FLOAT);
    t.data_location = 1;
    assert!(err(t).contains("no `location`"));
}

fn attr_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOAT,
        f,
        ..Default::default()
    }
}

fn constant(out: &str, a: AttributeProto) -> NodeProto {
    NodeProto {
        output: vec![out.into()],
        op_type: "Constant".into(),
        attribute: vec![a],
        ..Default::default()
    }
}

fn model(nodes: Vec<NodeProto>, outputs: &[&str], opset: i64) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            node: nodes,
            output: outputs
                .iter()
                .map(|o| ValueInfoProto {
                    name: (*o).into(),
                    r#type: None,
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn constant_node_forms() {
    let nodes = vec![
        constant("a", attr_f("value_float", 2.5)),
        constant(
            "b",
            AttributeProto {
                name: "value_floats".into(),
                r#type: attribute_type::FLOATS,
                floats: vec![1.0, 2.0],
                ..Default::default()
            },
        ),
        constant(
            "c",
            AttributeProto {
                name: "value_int".into(),
                r#type: attribute_type::INT,
                i: 7,
                ..Default::default()
            },
        ),
        constant(
            "d",
            AttributeProto {
                name: "value_ints".into(),
                r#type: attribute_type::INTS,
                ints: vec![3, 4],
                ..Default::default()
            },
        ),
        NodeProto {
            input: vec!["b".into(), "a".into()],
            output: vec!["e".into()],
            op_type: "Mul".into(),
            ..Default::default()
        },
    ];
    let bytes = model(nodes, &["a", "b", "c", "d", "e"], 17);
    let m = decode_model(&bytes, "<memory>").unwrap();
    let out = evaluate_model(&m, None, &ImportOptions::new(), "<memory>").unwrap();
    assert_eq!(out[0].data(), &Data::F(vec![2.5]));
    assert!(out[0].dims().is_empty());
    assert_eq!(out[1].data(), &Data::F(vec![1.0, 2.0]));
    assert_eq!(out[2].data(), &Data::I(vec![7]));
    assert_eq!(out[3].data(), &Data::I(vec![3, 4]));
    assert_eq!(out[4].data(), &Data::F(vec![2.5, 5.0]));
    // A mistyped attribute names the node and the attribute.
    let bad = constant(
        "a",
        AttributeProto {
            name: "value_float".into(),
            r#type: attribute_type::INT,
            ..Default::default()
        },
    );
    let m = decode_model(&model(vec![bad], &["a"], 17), "<memory>").unwrap();
    let e = evaluate_model(&m, None, &ImportOptions::new(), "<memory>")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Constant_0") && e.contains("value_float"), "{e}");
}

#[test]
fn opset_and_graph_are_checked() {
    let e = decode_model(&model(vec![], &[], 12), "m.onnx")
        .unwrap_err()
        .to_string();
    assert!(e.contains("m.onnx") && e.contains("opset 12"), "{e}");
    let e = decode_model(&ModelProto::default().encode_to_vec(), "m.onnx")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no graph"), "{e}");
}

/// A model `y = x ∘ c` with runtime input `x` and constant input `c`
/// bound at import, neither with a declared shape.
fn arith_model(op: &str) -> Vec<u8> {
    let input = |name: &str| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: None,
            }),
            ..Default::default()
        }),
    };
    let mut m = ModelProto::decode(&model(vec![], &["y"], 17)[..]).unwrap();
    let g = m.graph.as_mut().unwrap();
    g.input = vec![input("x"), input("c")];
    g.output = vec![input("y")];
    g.node = vec![NodeProto {
        input: vec!["x".into(), "c".into()],
        output: vec!["y".into()],
        op_type: op.into(),
        name: "arith".into(),
        ..Default::default()
    }];
    m.encode_to_vec()
}

#[test]
fn constants_that_do_not_keep_the_shape_are_refused() {
    let run = |op: &str, x: &[usize], c: Vec<usize>| {
        let n = c.iter().product();
        let t = super::OnnxTensor::from_f32("c", c, vec![0.5; n]).unwrap();
        let opts = ImportOptions::new().input_shape(x).bind("c", t);
        super::from_bytes(&arith_model(op), &opts)
    };
    let err = |op: &str, x: &[usize], c: Vec<usize>| match run(op, x, c) {
        Ok(_) => panic!("{op} accepted"),
        Err(e) => e.to_string(),
    };
    let has = |e: &str, parts: &[&str]| {
        assert!(!e.contains('\n'), "{e}");
        for p in parts {
            assert!(e.contains(p), "`{e}` should mention `{p}`");
        }
    };
    // Growing an axis of size 1, a higher rank, and no broadcast at all:
    // the node, its op type and both shapes.
    let e = err("Add", &[3, 1, 5], vec![3, 4, 5]);
    has(
        &e,
        &[
            "arith",
            "Add",
            "[3, 4, 5]",
            "[3, 1, 5]",
            "axis 1 would grow from 1 to 4",
        ],
    );
    let e = err("Div", &[3, 4, 5], vec![1, 3, 4, 5]);
    has(
        &e,
        &["arith", "Div", "[1, 3, 4, 5]", "[3, 4, 5]", "higher rank"],
    );
    let e = err("Sub", &[3, 4, 5], vec![2, 4, 5]);
    has(
        &e,
        &[
            "arith",
            "Sub",
            "[2, 4, 5]",
            "[3, 4, 5]",
            "does not broadcast",
        ],
    );
    // A constant that broadcasts (not per-channel) imports as one node.
    let (g, w, _) = run("Mul", &[3, 4, 5], vec![4, 5]).unwrap();
    let k = g
        .nodes
        .iter()
        .find(|n| n.op.kind() == "const_arith")
        .unwrap();
    assert_eq!(
        w.get(&format!("{}.constant", k.name)).unwrap().shape,
        [1, 4, 5, 1]
    );
}
