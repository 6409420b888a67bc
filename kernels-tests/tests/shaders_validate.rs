//! CPU-only: every `shaders/*.wgsl` template expands, for every storage
//! mode, into a module that parses and validates with naga; the folder is
//! not empty, and every file is in the embedded shader table.

use resincept::shaders::{Module, Shader, Storage};
use std::path::Path;

/// Every module: each family in each storage mode.
fn modules() -> Vec<Module> {
    Shader::ALL
        .iter()
        .flat_map(|&s| Storage::ALL.iter().map(move |&st| Module::new(s, st)))
        .collect()
}

#[test]
fn every_shader_file_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .wgsl files in {}", dir.display());
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let table: Vec<&str> = Shader::ALL.iter().map(|s| s.file_name()).collect();
    assert_eq!(names, table, "shaders/ and the embedded table disagree");
    for s in Shader::ALL {
        let on_disk = std::fs::read_to_string(dir.join(s.file_name())).unwrap();
        assert_eq!(
            on_disk,
            s.template(),
            "{} embedded copy is stale",
            s.file_name()
        );
    }
    for m in modules() {
        let src = m.source();
        assert_eq!(
            src,
            resincept::shaders::expand(m.shader.template(), m.storage),
            "{}: the cached expansion differs",
            m.name()
        );
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{}: {}", m.name(), e.emit_to_string(src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", m.name(), e.emit_to_string(src)));
        // Only the native-f16 modules may use f16 (and need the feature).
        assert_eq!(
            src.contains("enable f16;"),
            m.storage == Storage::F16,
            "{}",
            m.name()
        );
    }
}

/// The override constants each entry point is built with: every
/// combination [`resincept::kernels::conv2d::Variant`] can ask for on the
/// conv entries, none elsewhere (the defaults).
fn constant_sets(shader: Shader, entry: &str) -> Vec<Vec<(&'static str, f64)>> {
    if shader != Shader::Conv2d || entry == "conv2d_splitk_reduce" || entry == "conv2d_grouped" {
        return vec![vec![]];
    }
    let mut sets = Vec::new();
    for wm in [4.0, 8.0] {
        for wn in [4.0, 8.0] {
            for nbuf in [1.0, 2.0] {
                for mode in [0.0, 1.0, 2.0, 3.0] {
                    sets.push(vec![("WM", wm), ("WN", wn), ("NBUF", nbuf), ("MODE", mode)]);
                }
            }
        }
    }
    sets
}

/// Calls `f(module, entry point, constant set, naga module, info)` for
/// every entry point of every module (each family in each storage mode)
/// under every constant set the launcher uses, with the overrides applied
/// (naga's `process_overrides`, as wgpu does).
fn for_each_specialisation(
    mut f: impl FnMut(Module, &str, &[(&'static str, f64)], &naga::Module, &naga::valid::ModuleInfo),
) {
    let flags = naga::valid::ValidationFlags::all();
    let caps = naga::valid::Capabilities::all();
    for md in modules() {
        let file = md.name();
        let module = naga::front::wgsl::parse_str(md.source()).unwrap();
        let info = naga::valid::Validator::new(flags, caps)
            .validate(&module)
            .unwrap();
        for ep in &module.entry_points {
            let name = ep.name.as_str();
            for set in constant_sets(md.shader, name) {
                let mut constants = naga::back::PipelineConstants::default();
                for (k, v) in &set {
                    constants.insert(k.to_string(), *v);
                }
                let (m, i) = naga::back::pipeline_constants::process_overrides(
                    &module,
                    &info,
                    Some((naga::ShaderStage::Compute, name)),
                    &constants,
                )
                .unwrap_or_else(|e| panic!("{file} `{name}` {set:?}: overrides: {e}"));
                f(md, name, &set, &m, &i);
            }
        }
    }
}

/// Every entry point of every module, with every set of override
/// constants the launcher uses, translates to SPIR-V (Vulkan), MSL
/// (Metal), HLSL shader models 5.1 and 6.0 (DX12 with FXC or DXC) and
/// GLSL ES 3.10 (GL) with naga, the translator
/// wgpu runs on each backend. CI runs the kernels on Vulkan and GL for
/// real; this is the check Metal and DX12 get without their hardware (the
/// driver's own compile of the output is not covered). CPU only.
///
/// Native-f16 modules go where wgpu offers `SHADER_F16`: SPIR-V, MSL, and
/// HLSL shader model 6.2 (16-bit types; DXC only), never GL. The f32 and
/// packed-f16 modules go everywhere.
#[test]
fn every_entry_point_translates_for_every_backend() {
    use naga::back::{glsl, hlsl, msl, spv};
    let mut translated = 0;
    for_each_specialisation(|md, name, set, m, i| {
        let what = format!("{} `{name}` {set:?}", md.name());
        let native_f16 = md.storage == Storage::F16;
        let stage = naga::ShaderStage::Compute;
        let entry = Some((stage, name.to_string()));

        spv::write_vec(
            m,
            i,
            &spv::Options::default(),
            Some(&spv::PipelineOptions {
                shader_stage: stage,
                entry_point: name.to_string(),
            }),
        )
        .unwrap_or_else(|e| panic!("{what}: SPIR-V: {e}"));

        let msl_options = msl::Options {
            lang_version: (2, 1),
            ..Default::default()
        };
        let msl_pipeline = msl::PipelineOptions {
            entry_point: entry.clone(),
            ..Default::default()
        };
        msl::write_string(m, i, &msl_options, &msl_pipeline)
            .unwrap_or_else(|e| panic!("{what}: MSL: {e}"));

        // Shader model 6.0 is what wgpu asks of DXC; 5.1 is what it uses
        // with FXC, its fallback when no dxcompiler.dll ships beside the
        // program.
        let models = if native_f16 {
            vec![hlsl::ShaderModel::V6_2]
        } else {
            vec![hlsl::ShaderModel::V5_1, hlsl::ShaderModel::V6_0]
        };
        for shader_model in models {
            let mut hlsl_out = String::new();
            let hlsl_options = hlsl::Options {
                shader_model,
                ..Default::default()
            };
            let hlsl_pipeline = hlsl::PipelineOptions {
                entry_point: entry.clone(),
            };
            hlsl::Writer::new(&mut hlsl_out, &hlsl_options, &hlsl_pipeline)
                .write(m, i, None)
                .unwrap_or_else(|e| panic!("{what}: HLSL {shader_model:?}: {e}"));
        }

        if native_f16 {
            translated += 1;
            return;
        }
        let mut glsl_out = String::new();
        let glsl_pipeline = glsl::PipelineOptions {
            shader_stage: stage,
            entry_point: name.to_string(),
            multiview: None,
        };
        glsl::Writer::new(
            &mut glsl_out,
            m,
            i,
            &glsl::Options::default(),
            &glsl_pipeline,
            naga::proc::BoundsCheckPolicies::default(),
        )
        .and_then(|mut w| w.write())
        .unwrap_or_else(|e| panic!("{what}: GLSL: {e}"));
        translated += 1;
    });
    // Per storage mode, conv2d: 4 tiled entries × 32 constant sets, the
    // direct conv and the split-K reduce; plus the other families' entries.
    assert!(translated > 3 * 130, "only {translated} translations");
    eprintln!("{translated} entry-point translations, each to SPIR-V, MSL, HLSL and GLSL");
}

/// What one entry point, specialised, asks of the device.
#[derive(Debug, Clone, Copy)]
struct Needs {
    storage_buffers: u32,
    workgroup_size: [u32; 3],
    workgroup_bytes: u32,
}

/// Override constants by name, as the launcher passes them.
type Constants = Vec<(&'static str, f64)>;

/// [`Needs`] of every entry point under every constant set the launcher
/// uses, read from naga's module after the overrides are applied.
fn needs() -> Vec<(String, Constants, Needs)> {
    let mut out = Vec::new();
    for_each_specialisation(|md, name, set, m, i| {
        let index = m.entry_points.iter().position(|e| e.name == name).unwrap();
        let used = i.get_entry_point(index);
        let mut n = Needs {
            storage_buffers: 0,
            workgroup_size: m.entry_points[index].workgroup_size,
            workgroup_bytes: 0,
        };
        for (h, var) in m.global_variables.iter() {
            if used[h].is_empty() {
                continue;
            }
            match var.space {
                naga::AddressSpace::Storage { .. } => n.storage_buffers += 1,
                naga::AddressSpace::WorkGroup => {
                    n.workgroup_bytes += m.types[var.ty].inner.size(m.to_ctx())
                }
                _ => {}
            }
        }
        out.push((format!("{} `{name}`", md.name()), set.to_vec(), n));
    });
    out
}

/// `Context::REQUIRED_LIMITS` is exactly what the shaders need: the most
/// storage buffers, invocations and workgroup extent of any entry point,
/// and the most workgroup memory of any entry at its smallest
/// specialisation (the conv launcher falls back to the smallest tile on a
/// small device). Also pins the launcher's own accounting of each conv
/// variant's workgroup memory to what the shader declares. CPU only.
#[test]
fn required_limits_are_what_the_shaders_need() {
    use resincept::device::context::REQUIRED_LIMITS as R;
    use resincept::kernels::conv2d::{TapMode, Variant};
    let all = needs();
    let most = |f: &dyn Fn(&Needs) -> u32| all.iter().map(|(_, _, n)| f(n)).max().unwrap();
    assert_eq!(
        most(&|n| n.storage_buffers),
        R.max_storage_buffers_per_shader_stage
    );
    assert_eq!(
        most(&|n| n.workgroup_size.iter().product()),
        R.max_compute_invocations_per_workgroup
    );
    assert_eq!(
        most(&|n| n.workgroup_size[0]),
        R.max_compute_workgroup_size_x
    );
    assert_eq!(
        most(&|n| n.workgroup_size[1]),
        R.max_compute_workgroup_size_y
    );
    assert_eq!(
        most(&|n| n.workgroup_size[2]),
        R.max_compute_workgroup_size_z
    );

    // Smallest specialisation of each entry point, then the largest of those.
    let mut smallest: std::collections::BTreeMap<&str, u32> = Default::default();
    for (entry, _, n) in &all {
        let e = smallest.entry(entry).or_insert(u32::MAX);
        *e = (*e).min(n.workgroup_bytes);
    }
    assert_eq!(
        smallest.values().max().copied().unwrap(),
        R.max_compute_workgroup_storage_size,
        "{smallest:?}"
    );

    let mut conv = 0;
    for (entry, set, n) in &all {
        if !entry.starts_with("conv2d.") || set.is_empty() {
            continue;
        }
        let get = |k: &str| set.iter().find(|(n, _)| *n == k).unwrap().1 as u32;
        let v = Variant {
            vec4: entry.contains("vec4"),
            mode: TapMode::General,
            wm: get("WM"),
            wn: get("WN"),
            nbuf: get("NBUF"),
        };
        assert_eq!(v.workgroup_bytes(), n.workgroup_bytes, "{entry} {set:?}");
        conv += 1;
    }
    // 4 tiled entries × 32 constant sets × 3 storage modes.
    assert_eq!(conv, 384, "conv specialisations checked");
}

/// Every pipeline of `kernels::catalogue` (on small and large devices) is
/// one of the specialisations checked above, with the bindings its shader
/// declares and the workgroup memory the kernel states for it (what the
/// Dawn gate's `needs` marks and the traces' limits are built from). CPU only.
#[test]
fn catalogue_matches_the_shaders() {
    let all = needs();
    let mut checked = 0;
    for wg in [8192, 16384, 32768, 65536] {
        let limits = wgpu::Limits {
            max_compute_workgroup_storage_size: wg,
            ..wgpu::Limits::default()
        };
        for p in resincept::kernels::catalogue(&limits) {
            let what = format!("{} `{}`", Module::new(p.shader, p.storage).name(), p.entry);
            let mut sorted = p.constants.clone();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let found = all.iter().find(|(e, set, _)| {
                let mut s = set.clone();
                s.sort_by(|a, b| a.0.cmp(b.0));
                *e == what && s == sorted
            });
            let Some((_, _, n)) = found else {
                panic!(
                    "{what} {:?}: not a specialisation of the shaders",
                    p.constants
                );
            };
            assert_eq!(
                n.workgroup_bytes, p.workgroup_bytes,
                "{what} {:?}",
                p.constants
            );
            // An entry may leave a binding of its layout unused (the
            // split-K reduce does not read the weights).
            assert!(
                (n.storage_buffers as usize) < p.bindings.len(),
                "{what}: uses {} storage buffers, its layout has {}",
                n.storage_buffers,
                p.bindings.len() - 1
            );
            assert!(p.workgroup_bytes <= wg, "{what}: over the device's {wg}");
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} catalogue entries");
}
