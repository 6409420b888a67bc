//! CPU-only: every `shaders/*.wgsl` parses and validates with naga, the
//! folder is not empty, and every file is in the embedded shader table.

use std::path::Path;

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
    for path in &files {
        let src = std::fs::read_to_string(path).unwrap();
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&src)));
    }
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let table: Vec<&str> = resincept::shaders::Shader::ALL
        .iter()
        .map(|s| s.file_name())
        .collect();
    assert_eq!(names, table, "shaders/ and the embedded table disagree");
    for s in resincept::shaders::Shader::ALL {
        let on_disk = std::fs::read_to_string(dir.join(s.file_name())).unwrap();
        assert_eq!(
            on_disk,
            s.source(),
            "{} embedded copy is stale",
            s.file_name()
        );
    }
}
