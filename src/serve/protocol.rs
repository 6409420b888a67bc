//! The Open Inference Protocol's REST inference messages: parsing a
//! request (JSON, or JSON plus binary tensor data) into checked images, and
//! writing the response. No sockets here: bytes in, bytes out.
//!
//! Binary tensor data (Triton's `binary_tensor_data` extension): when the
//! request has an `Inference-Header-Content-Length: L` header, the body's
//! first L bytes are the JSON and the rest is the raw data of the inputs
//! whose `parameters.binary_data_size` is set, in the order of `inputs`,
//! little-endian, with no padding. An output is returned the same way when
//! its `parameters.binary_data` is true, or, for outputs not listed, when
//! the request's `parameters.binary_data_output` is true (what tritonclient
//! asks when given no outputs). JSON `data` may be flat or nested (row
//! major either way). Unknown fields and parameters are ignored.

use super::engine::ModelSpec;
use super::error::ServeError;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// A checked inference request, from either protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct InferRequest {
    /// The request's `id`, echoed in the response.
    pub id: Option<String>,
    /// Images in the request (the batch dimension of its input).
    pub images: usize,
    /// `images ×` the input's values per image, row major.
    pub data: Vec<f32>,
    /// Whether the output goes back as binary data (REST only).
    pub binary_output: bool,
}

#[derive(Deserialize)]
struct RestRequest<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(borrow)]
    inputs: Vec<RestInput<'a>>,
    #[serde(default)]
    outputs: Option<Vec<RestOutput>>,
}

#[derive(Deserialize)]
struct RestInput<'a> {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RestOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// Row-major numbers from a flat or nested JSON array.
struct Flat(Vec<f32>);

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Into<'v>(&'v mut Vec<f32>);
        impl<'de> de::DeserializeSeed<'de> for Into<'_> {
            type Value = ();
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_any(self)
            }
        }
        impl<'de> Visitor<'de> for Into<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("numbers, in a flat or nested array")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
                self.0.push(v as f32);
                Ok(())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
                self.0.push(v as f32);
                Ok(())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
                self.0.push(v as f32);
                Ok(())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                while seq.next_element_seed(Into(&mut *self.0))?.is_some() {}
                Ok(())
            }
        }
        let mut v = Vec::new();
        d.deserialize_any(Into(&mut v))?;
        Ok(Flat(v))
    }
}

/// A boolean parameter: absent is `None`; present but not a boolean is a 400.
fn bool_param(
    params: &Option<Map<String, Value>>,
    key: &str,
    whose: &str,
) -> Result<Option<bool>, ServeError> {
    match params.as_ref().and_then(|p| p.get(key)) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ServeError::bad_request(format!(
            "parameter `{key}` of {whose} must be true or false, got {other}"
        ))),
    }
}

/// The number of images of an input of `shape`, or a 400 saying the
/// shape the model takes, batch dimension first.
pub fn check_input(
    spec: &ModelSpec,
    name: &str,
    datatype: &str,
    shape: &[i64],
) -> Result<usize, ServeError> {
    let inp = &spec.input;
    if name != inp.name {
        return Err(ServeError::bad_request(format!(
            "unknown input `{name}`: model `{}` has one input, `{}` {} {:?}",
            spec.name,
            inp.name,
            inp.datatype,
            inp.wire_shape()
        )));
    }
    if datatype != inp.datatype {
        return Err(ServeError::bad_request(format!(
            "input `{name}` has datatype {datatype}; model `{}` takes {}",
            spec.name, inp.datatype
        )));
    }
    let per_image: Vec<i64> = inp.dims.iter().map(|&d| d as i64).collect();
    let fits = shape.len() == per_image.len() + 1 && shape[0] >= 1 && shape[1..] == per_image[..];
    if !fits {
        let dims: Vec<String> = inp.dims.iter().map(usize::to_string).collect();
        return Err(ServeError::bad_request(format!(
            "input `{name}` has shape {shape:?}; model `{}` takes [N, {}]: the batch \
             dimension N ≥ 1 first, then {} (metadata shape {:?})",
            spec.name,
            dims.join(", "),
            dims.join("×"),
            inp.wire_shape()
        )));
    }
    let images = shape[0] as usize;
    images
        .checked_mul(inp.per_image())
        .filter(|v| v.checked_mul(4).is_some())
        .ok_or_else(|| {
            ServeError::bad_request(format!(
                "input `{name}`: a batch dimension of {images} images is too large"
            ))
        })?;
    Ok(images)
}

/// Little-endian f32s from `bytes` (a multiple of 4 long).
pub fn f32_from_le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Parses and checks a REST inference request for `spec`. `header_len`
/// is the `Inference-Header-Content-Length` header, if any.
pub fn parse_rest(
    body: &[u8],
    header_len: Option<&str>,
    spec: &ModelSpec,
) -> Result<InferRequest, ServeError> {
    let (json, mut binary) = match header_len {
        None => (body, &[][..]),
        Some(h) => {
            let n: usize = h.trim().parse().map_err(|_| {
                ServeError::bad_request(format!(
                    "Inference-Header-Content-Length must be a byte count, got `{h}`"
                ))
            })?;
            if n > body.len() {
                return Err(ServeError::bad_request(format!(
                    "Inference-Header-Content-Length is {n} but the body has only {} bytes",
                    body.len()
                )));
            }
            body.split_at(n)
        }
    };
    let mut stream = serde_json::Deserializer::from_slice(json).into_iter::<RestRequest>();
    let req = match stream.next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return Err(ServeError::bad_request(format!(
                "malformed inference request JSON: {e}"
            )))
        }
        None => {
            return Err(ServeError::bad_request(
                "empty body: expected an inference request JSON object",
            ))
        }
    };
    let rest = &json[stream.byte_offset()..];
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(ServeError::bad_request(format!(
            "{} bytes follow the request's JSON{}",
            rest.len(),
            if header_len.is_none() {
                "; binary tensor data needs the Inference-Header-Content-Length header"
            } else {
                " inside the Inference-Header-Content-Length"
            }
        )));
    }
    let id = match req.id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(ServeError::bad_request(format!(
                "`id` must be a string, got {other}"
            )))
        }
    };
    if req.inputs.len() != 1 {
        return Err(ServeError::bad_request(format!(
            "model `{}` takes one input, `{}`; the request has {}",
            spec.name,
            spec.input.name,
            req.inputs.len()
        )));
    }
    let inp = &req.inputs[0];
    let images = check_input(spec, &inp.name, &inp.datatype, &inp.shape)?;
    let count = images * spec.input.per_image();
    let binary_size = match inp
        .parameters
        .as_ref()
        .and_then(|p| p.get("binary_data_size"))
    {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            ServeError::bad_request(format!(
                "parameter `binary_data_size` of input `{}` must be a byte count, got {v}",
                inp.name
            ))
        })?),
    };
    let data = match (inp.data, binary_size) {
        (Some(_), Some(_)) => {
            return Err(ServeError::bad_request(format!(
                "input `{}` has both `data` and binary_data_size; give one",
                inp.name
            )))
        }
        (None, None) => {
            return Err(ServeError::bad_request(format!(
                "input `{}` has no `data` and no binary_data_size parameter",
                inp.name
            )))
        }
        (Some(raw), None) => {
            let Flat(v) = serde_json::from_str(raw.get()).map_err(|e| {
                ServeError::bad_request(format!(
                    "`data` of input `{}` must be {} numbers (flat or nested): {e}",
                    inp.name, spec.input.datatype
                ))
            })?;
            if v.len() != count {
                return Err(ServeError::bad_request(format!(
                    "input `{}` of shape {:?} needs {count} values; its `data` has {}",
                    inp.name,
                    inp.shape,
                    v.len()
                )));
            }
            v
        }
        (None, Some(size)) => {
            if header_len.is_none() {
                return Err(ServeError::bad_request(format!(
                    "input `{}` has binary_data_size but the request has no \
                     Inference-Header-Content-Length header",
                    inp.name
                )));
            }
            if size != (count * 4) as u64 {
                return Err(ServeError::bad_request(format!(
                    "input `{}` of shape {:?} needs {} bytes of FP32 data; its \
                     binary_data_size is {size}",
                    inp.name,
                    inp.shape,
                    count * 4
                )));
            }
            let size = size as usize;
            if binary.len() < size {
                return Err(ServeError::bad_request(format!(
                    "truncated binary data: input `{}` needs {size} bytes, only {} follow \
                     the JSON header",
                    inp.name,
                    binary.len()
                )));
            }
            let (mine, rest) = binary.split_at(size);
            binary = rest;
            f32_from_le(mine)
        }
    };
    if !binary.is_empty() {
        return Err(ServeError::bad_request(format!(
            "{} bytes of binary data follow the last binary input",
            binary.len()
        )));
    }
    let default_binary =
        bool_param(&req.parameters, "binary_data_output", "the request")?.unwrap_or(false);
    let mut binary_output = default_binary;
    if let Some(outputs) = &req.outputs {
        if outputs.len() > 1 {
            return Err(ServeError::bad_request(format!(
                "model `{}` has one output, `{}`; the request asks for {}",
                spec.name,
                spec.output.name,
                outputs.len()
            )));
        }
        if let Some(o) = outputs.first() {
            if o.name != spec.output.name {
                return Err(ServeError::bad_request(format!(
                    "unknown output `{}`: model `{}` has one output, `{}` {} {:?}",
                    o.name,
                    spec.name,
                    spec.output.name,
                    spec.output.datatype,
                    spec.output.wire_shape()
                )));
            }
            let whose = format!("output `{}`", o.name);
            if o.parameters
                .as_ref()
                .is_some_and(|p| p.contains_key("classification"))
            {
                return Err(ServeError::bad_request(format!(
                    "{whose}: the classification extension is not supported; \
                     ask for the raw output"
                )));
            }
            binary_output =
                bool_param(&o.parameters, "binary_data", &whose)?.unwrap_or(default_binary);
        }
    }
    Ok(InferRequest {
        id,
        images,
        data,
        binary_output,
    })
}

#[derive(Serialize)]
struct RestResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: [RestOutputTensor<'a>; 1],
}

#[derive(Serialize)]
struct RestOutputTensor<'a> {
    name: &'a str,
    datatype: &'a str,
    shape: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a [f32]>,
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

/// The response body for `req`'s `output` (`images ×` the output's values
/// per image), and the `Inference-Header-Content-Length` to send when the
/// output is binary. JSON numbers are the shortest text that reads back
/// as the same f32; a non-finite value, which JSON cannot hold, is `null`.
pub fn rest_response(
    spec: &ModelSpec,
    req: &InferRequest,
    output: &[f32],
) -> (Vec<u8>, Option<usize>) {
    let shape: Vec<usize> = std::iter::once(req.images)
        .chain(spec.output.dims.iter().copied())
        .collect();
    let binary = req.binary_output;
    let resp = RestResponse {
        model_name: &spec.name,
        model_version: &spec.version,
        id: req.id.as_deref(),
        outputs: [RestOutputTensor {
            name: &spec.output.name,
            datatype: spec.output.datatype,
            shape,
            parameters: binary.then_some(BinarySize {
                binary_data_size: output.len() * 4,
            }),
            data: (!binary).then_some(output),
        }],
    };
    // Serialising plain structs, strings and f32s cannot fail.
    let mut body = serde_json::to_vec(&resp).unwrap_or_default();
    if !binary {
        return (body, None);
    }
    let header = body.len();
    body.reserve(output.len() * 4);
    for v in output {
        body.extend_from_slice(&v.to_le_bytes());
    }
    (body, Some(header))
}

/// `GET /v2`'s body.
pub fn server_metadata() -> Value {
    serde_json::json!({
        "name": "resincept",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    })
}

/// `GET /v2/models/{m}`'s body.
pub fn model_metadata(spec: &ModelSpec) -> Value {
    let t = |t: &super::engine::TensorSpec| serde_json::json!({"name": t.name, "datatype": t.datatype, "shape": t.wire_shape()});
    serde_json::json!({
        "name": spec.name,
        "versions": [spec.version],
        "platform": spec.platform,
        "inputs": [t(&spec.input)],
        "outputs": [t(&spec.output)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ModelSpec {
        ModelSpec::image_classifier("net", 2, 3, 4)
    }

    fn json_body(shape: &str, data: &str) -> Vec<u8> {
        format!(
            r#"{{"id":"q1","inputs":[{{"name":"input","datatype":"FP32","shape":{shape},"data":{data}}}],"extra":{{"x":1}}}}"#
        )
        .into_bytes()
    }

    fn binary_body(json: &str, values: &[f32]) -> (Vec<u8>, String) {
        let mut body = json.as_bytes().to_vec();
        for v in values {
            body.extend(v.to_le_bytes());
        }
        (body, json.len().to_string())
    }

    fn err(body: &[u8], header: Option<&str>) -> ServeError {
        parse_rest(body, header, &spec()).unwrap_err()
    }

    #[test]
    fn parses_flat_and_nested_json_data() {
        let flat: Vec<String> = (0..24).map(|i| i.to_string()).collect();
        let r = parse_rest(
            &json_body("[2,3,2,2]", &format!("[{}]", flat.join(","))),
            None,
            &spec(),
        )
        .unwrap();
        assert_eq!(r.id.as_deref(), Some("q1"));
        assert_eq!(r.images, 2);
        assert_eq!(r.data, (0..24).map(|i| i as f32).collect::<Vec<_>>());
        assert!(!r.binary_output);
        let nested = "[[[[0.5,1],[2,3]],[[4,5],[6,7]],[[8,9],[10,11]]]]";
        let r = parse_rest(&json_body("[1,3,2,2]", nested), None, &spec()).unwrap();
        assert_eq!(r.data[0], 0.5);
        assert_eq!(r.data[11], 11.0);
    }

    #[test]
    fn parses_binary_inputs_and_output_choices() {
        let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect();
        let json = r#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,2,2],"parameters":{"binary_data_size":48}}],"parameters":{"binary_data_output":true}}"#;
        let (body, h) = binary_body(json, &values);
        let r = parse_rest(&body, Some(&h), &spec()).unwrap();
        assert_eq!(r.data, values);
        assert!(r.binary_output);
        assert_eq!(r.id, None);
        // An output's own binary_data wins over binary_data_output.
        let json = r#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,2,2],"parameters":{"binary_data_size":48}}],"outputs":[{"name":"output","parameters":{"binary_data":false}}],"parameters":{"binary_data_output":true}}"#;
        let (body, h) = binary_body(json, &values);
        assert!(!parse_rest(&body, Some(&h), &spec()).unwrap().binary_output);
    }

    #[test]
    fn malformed_requests_say_what_was_expected() {
        let ok_data = format!("[{}]", ["0"; 12].join(","));
        let cases: Vec<(Vec<u8>, Option<&str>, &str)> = vec![
            (b"".to_vec(), None, "empty body"),
            (b"{not json".to_vec(), None, "malformed inference request JSON"),
            (b"{}".to_vec(), None, "missing field `inputs`"),
            (json_body("[3,2,2]", &ok_data), None, "batch dimension N"),
            (json_body("[0,3,2,2]", "[]"), None, "N ≥ 1"),
            (json_body("[1,3,2,3]", &ok_data), None, "[N, 3, 2, 2]"),
            (json_body("[1,3,2,2]", "[1,2]"), None, "needs 12 values; its `data` has 2"),
            (json_body("[1,3,2,2]", r#"["a"]"#), None, "must be FP32 numbers"),
            (
                json_body("[9223372036854775807,3,2,2]", "[]"),
                None,
                "too large",
            ),
            (
                br#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3,2,2],"data":[]}]}"#
                    .to_vec(),
                None,
                "unknown input `x`",
            ),
            (
                br#"{"inputs":[{"name":"input","datatype":"INT8","shape":[1,3,2,2],"data":[]}]}"#
                    .to_vec(),
                None,
                "datatype INT8; model `net` takes FP32",
            ),
            (
                br#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,2,2]}]}"#.to_vec(),
                None,
                "no `data`",
            ),
            (
                br#"{"inputs":[]}"#.to_vec(),
                None,
                "the request has 0",
            ),
            (
                format!(
                    r#"{{"inputs":[{{"name":"input","datatype":"FP32","shape":[1,3,2,2],"data":{ok_data}}}],"outputs":[{{"name":"logits"}}]}}"#
                )
                .into_bytes(),
                None,
                "unknown output `logits`",
            ),
            (
                format!(
                    r#"{{"inputs":[{{"name":"input","datatype":"FP32","shape":[1,3,2,2],"data":{ok_data}}}],"parameters":{{"binary_data_output":"yes"}}}}"#
                )
                .into_bytes(),
                None,
                "must be true or false",
            ),
            (
                format!(
                    r#"{{"id":5,"inputs":[{{"name":"input","datatype":"FP32","shape":[1,3,2,2],"data":{ok_data}}}]}}"#
                )
                .into_bytes(),
                None,
                "`id` must be a string",
            ),
        ];
        for (body, header, needle) in cases {
            let e = err(&body, header);
            assert_eq!(e.http_status(), 400, "{e}");
            assert!(
                e.message.contains(needle),
                "`{needle}` not in: {e} (body {})",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn binary_framing_errors() {
        let json = r#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,2,2],"parameters":{"binary_data_size":48}}]}"#;
        let values = [0.0f32; 12];
        let (body, h) = binary_body(json, &values);
        // Truncated: 47 of 48 bytes.
        let e = err(&body[..body.len() - 1], Some(&h));
        assert!(e.message.contains("truncated binary data"), "{e}");
        assert!(e.message.contains("needs 48 bytes, only 47"), "{e}");
        // A header longer than the body.
        let e = err(&body, Some("100000"));
        assert!(e.message.contains("has only"), "{e}");
        // Not a number.
        let e = err(&body, Some("ten"));
        assert!(e.message.contains("byte count, got `ten`"), "{e}");
        // Extra bytes after the data.
        let mut long = body.clone();
        long.push(0);
        let e = err(&long, Some(&h));
        assert!(e.message.contains("1 bytes of binary data follow"), "{e}");
        // Binary data without the header.
        let e = err(&body, None);
        assert!(e.message.contains("Inference-Header-Content-Length"), "{e}");
        // binary_data_size that does not fit the shape.
        let bad = json.replace("48", "40");
        let (body, h) = binary_body(&bad, &values[..10]);
        let e = err(&body, Some(&h));
        assert!(e.message.contains("needs 48 bytes of FP32 data"), "{e}");
    }

    #[test]
    fn responses_in_json_and_binary() {
        let spec = spec();
        let mut req = InferRequest {
            id: Some("a\"b".into()),
            images: 2,
            data: vec![],
            binary_output: false,
        };
        let out = [0.1f32, -2.5, 3.0, 1e-7, f32::MAX, 0.0];
        let (body, h) = rest_response(&spec, &req, &out);
        assert_eq!(h, None);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], "a\"b");
        assert_eq!(v["model_name"], "net");
        assert_eq!(v["outputs"][0]["shape"], serde_json::json!([2, 3]));
        let back: Vec<f32> = v["outputs"][0]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            out.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert!(
            String::from_utf8_lossy(&body).contains("0.1,"),
            "shortest f32 text"
        );

        req.binary_output = true;
        let (body, h) = rest_response(&spec, &req, &out);
        let h = h.unwrap();
        let v: Value = serde_json::from_slice(&body[..h]).unwrap();
        assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 24);
        assert!(v["outputs"][0].get("data").is_none());
        assert_eq!(f32_from_le(&body[h..]), out);
    }

    #[test]
    fn metadata() {
        let m = model_metadata(&spec());
        assert_eq!(m["inputs"][0]["shape"], serde_json::json!([-1, 3, 2, 2]));
        assert_eq!(m["outputs"][0]["shape"], serde_json::json!([-1, 3]));
        assert_eq!(m["platform"], "resincept");
        assert_eq!(server_metadata()["extensions"][0], "binary_tensor_data");
    }
}
