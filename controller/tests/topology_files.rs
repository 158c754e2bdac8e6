//! Topology files: every file in `topologies/` loads, and each kind of
//! mistake is reported with the file, line and field.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use std::path::Path;

use solyx::topology::{Role, Topology, TopologyError};

fn errors(yaml: &str) -> TopologyError {
    Topology::parse(yaml, "net.yaml").expect_err("the file should be refused")
}

/// The one problem of a file that should have exactly one.
fn only(yaml: &str) -> (String, Option<(usize, usize)>, String) {
    let e = errors(yaml);
    assert_eq!(e.problems.len(), 1, "{e}");
    let p = &e.problems[0];
    (p.field.clone(), p.line, p.reason.clone())
}

const GOOD: &str = "\
name: t
defaults:
  link: { bandwidth: 1Gbit, delay: 1ms }
devices:
  - { name: s1, role: fabric, device_id: 1 }
  - { name: s2, role: fabric, device_id: 2 }
  - { name: h1, role: host, device_id: 11, ip: 10.0.0.1/24 }
links:
  - [s1:1, s2:1]
  - { a: s1:2, b: h1:1, bandwidth: 10Gbit, delay: 0ms }
";

#[test]
fn every_file_in_topologies_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let t = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(t.devices().count() > 0, "{}", path.display());
            assert!(t.links().count() > 0, "{}", path.display());
            // Every link has its reverse: files declare cables.
            for (id, _) in t.links() {
                assert!(t.reverse(id).is_some(), "{}", t.describe_link(id));
            }
            loaded += 1;
        }
    }
    assert!(loaded >= 3, "expected leaf-spine, fat-tree and a WAN");
}

#[test]
fn a_good_file_builds_both_directions_with_defaults() {
    let t = Topology::parse(GOOD, "net.yaml").unwrap();
    let s1 = t.device_ix("s1").unwrap();
    let l = t.link_from(s1, 1).unwrap();
    let link = t.link(l).unwrap();
    assert_eq!(link.state.capacity.bps(), 1_000_000_000);
    assert_eq!(link.delay.as_millis(), 1);
    let r = t.reverse(l).unwrap();
    assert_eq!(t.link(r).unwrap().src_port, 1);
    let h = t.link_from(s1, 2).unwrap();
    assert_eq!(t.link(h).unwrap().state.capacity.bps(), 10_000_000_000);
    let h1 = t.device(t.device_ix("h1").unwrap()).unwrap();
    assert_eq!(h1.role, Role::Host);
    assert_eq!(h1.pipeline, "solyx_host");
    assert_eq!(t.edge_devices().len(), 1);
}

#[test]
fn syntax_and_type_errors_name_line_and_field() {
    let (field, line, reason) = only(&GOOD.replace("device_id: 2", "device_id: two"));
    assert_eq!(field, "devices[1].device_id");
    assert_eq!(line.map(|l| l.0), Some(6));
    assert!(reason.contains("invalid"), "{reason}");

    let (field, line, reason) = only(&GOOD.replace("bandwidth: 10Gbit", "bandwidth: 10Gbps"));
    assert_eq!(field, "links[1].bandwidth");
    assert_eq!(line.map(|l| l.0), Some(10));
    assert!(reason.contains("Gbit"), "{reason}");

    let (field, _, reason) =
        only(&GOOD.replace("role: fabric, device_id: 1", "role: router, device_id: 1"));
    assert_eq!(field, "devices[0].role");
    assert!(reason.contains("fabric"), "{reason}");

    let (field, line, reason) = only(&GOOD.replace("[s1:1, s2:1]", "[s1, s2:1]"));
    assert_eq!(field, "links[0]");
    assert_eq!(line.map(|l| l.0), Some(9));
    assert!(reason.contains("device:port"), "{reason}");

    let (_, line, reason) = only(&GOOD.replace("devices:", "devices:\n  bad: [\n"));
    assert!(line.is_some(), "{reason}");

    let (field, _, reason) = only(&GOOD.replace("name: t", "name: t\nlinkz: []"));
    assert_eq!(field, "file");
    assert!(reason.contains("linkz"), "{reason}");

    let e = errors(&GOOD.replace("device_id: 2", "device_id: two"));
    let text = e.to_string();
    assert!(text.starts_with("net.yaml:6:"), "{text}");
}

#[test]
fn rule_violations_name_line_and_field() {
    // A duplicate name: reported, and the link to the now-missing s2 too.
    let e = errors(&GOOD.replace("name: s2", "name: s1"));
    assert_eq!(e.problems[0].field, "devices[1].name", "{e}");
    assert_eq!(e.problems[0].line.map(|l| l.0), Some(6));
    assert!(e.problems[0].reason.contains("devices[0]"), "{e}");
    assert!(e.problems.iter().any(|p| p.field == "links[0].b"), "{e}");

    // Interface names are built from device names: 9 characters at most.
    assert!(Topology::parse(&GOOD.replace("h1", "host-1234"), "net.yaml").is_ok());
    let e = errors(&GOOD.replace("h1", "host-12345"));
    assert_eq!(e.problems[0].field, "devices[2].name", "{e}");
    assert!(e.problems[0].reason.contains("at most 9"), "{e}");

    let (field, line, _) = only(&GOOD.replace("device_id: 2", "device_id: 1"));
    assert_eq!(
        (field.as_str(), line.map(|l| l.0)),
        ("devices[1].device_id", Some(6))
    );

    let (field, line, reason) = only(&GOOD.replace("[s1:1, s2:1]", "[s1:1, s3:1]"));
    assert_eq!((field.as_str(), line.map(|l| l.0)), ("links[0].b", Some(9)));
    assert!(reason.contains("s3"), "{reason}");

    let (field, line, reason) = only(&GOOD.replace("a: s1:2", "a: s1:1"));
    assert_eq!(
        (field.as_str(), line.map(|l| l.0)),
        ("links[1].a", Some(10))
    );
    assert!(reason.contains("links[0].a"), "{reason}");

    let (field, _, reason) = only(&GOOD.replace("[s1:1, s2:1]", "[s1:255, s2:1]"));
    assert_eq!(field, "links[0].a");
    assert!(reason.contains("CPU"), "{reason}");

    let (field, line, reason) = only(&GOOD.replace(", ip: 10.0.0.1/24", ""));
    assert_eq!(
        (field.as_str(), line.map(|l| l.0)),
        ("devices[2].ip", Some(7))
    );
    assert!(reason.contains("host needs an ip"), "{reason}");

    let (field, _, _) = only(&GOOD.replace("10.0.0.1/24", "10.0.0.1"));
    assert_eq!(field, "devices[2].ip");

    let (field, _, _) = only(&GOOD.replace("s2", "Spine_Two_Long"));
    assert_eq!(field, "devices[1].name");

    let (field, _, _) = only(&GOOD.replace("device_id: 1 }", "device_id: 0 }"));
    assert_eq!(field, "devices[0].device_id");

    let two_hosts = GOOD
        .replace(
            "role: fabric, device_id: 2",
            "role: host, device_id: 2, ip: 10.0.0.2/24",
        )
        .replace("a: s1:2, b: h1:1", "a: s2:2, b: h1:1");
    let (field, line, reason) = only(&two_hosts);
    assert_eq!((field.as_str(), line.map(|l| l.0)), ("links[1]", Some(10)));
    assert!(reason.contains("both hosts"), "{reason}");

    let (field, _, _) = only(&GOOD.replace("device_id: 11", "device_id: 11, mac: \"02:00\""));
    assert_eq!(field, "devices[2].mac");

    let (field, _, _) = only(&GOOD.replace("device_id: 11", "device_id: 11, address: nowhere"));
    assert_eq!(field, "devices[2].address");
}

#[test]
fn all_problems_are_reported_at_once_in_file_order() {
    let yaml = GOOD
        .replace("name: s2", "name: s1")
        .replace("[s1:1, s2:1]", "[s1:1, zz:1]")
        .replace(", ip: 10.0.0.1/24", "");
    let e = errors(&yaml);
    let lines: Vec<usize> = e
        .problems
        .iter()
        .filter_map(|p| p.line.map(|l| l.0))
        .collect();
    assert!(e.problems.len() >= 3, "{e}");
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn a_missing_file_names_itself() {
    let e = Topology::load(Path::new("/nonexistent/topo.yaml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/topo.yaml: file: cannot read"),
        "{e}"
    );
}

/// GOOD with `defaults.device_config` for the fabric pipeline.
fn with_device_config(path: &str) -> String {
    GOOD.replace(
        "  link: { bandwidth: 1Gbit, delay: 1ms }\n",
        &format!(
            "  link: {{ bandwidth: 1Gbit, delay: 1ms }}\n  \
             device_config:\n    solyx_fabric: {path}\n"
        ),
    )
}

#[test]
fn a_device_config_is_read_relative_to_the_topology_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bmv2")).unwrap();
    let json = br#"{"program": "solyx_fabric.p4", "__meta__": {"version": [2, 23]}}"#;
    std::fs::write(dir.path().join("bmv2/fabric.json"), json).unwrap();
    let file = dir.path().join("net.yaml");
    std::fs::write(&file, with_device_config("bmv2/fabric.json")).unwrap();
    let t = Topology::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let c = t
        .device_config("solyx_fabric")
        .expect("the fabric's config");
    assert_eq!(&*c.bytes, json);
    assert_eq!(c.path, dir.path().join("bmv2/fabric.json"));
    assert!(t.device_config("solyx_host").is_none());
    // Debug output names the file, not megabytes of JSON.
    assert!(!format!("{c:?}").contains("program"), "{c:?}");
}

#[test]
fn a_device_config_that_cannot_be_read_is_refused_with_its_devices_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net.yaml");
    std::fs::write(&file, with_device_config("bmv2/missing.json")).unwrap();
    let e = Topology::load(&file).unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e}");
    let p = &e.problems[0];
    assert_eq!(p.field, "defaults.device_config.solyx_fabric");
    assert_eq!(p.line.map(|l| l.0), Some(5), "{e}");
    let missing = dir.path().join("bmv2/missing.json");
    assert!(
        p.reason.contains(&missing.display().to_string()),
        "{}",
        p.reason
    );
    assert!(
        p.reason.contains("s1, s2"),
        "the devices are named: {}",
        p.reason
    );
    assert!(!p.reason.contains("h1"), "{}", p.reason);

    // A pipeline no device runs is a mistake too (a misspelt name).
    let yaml = with_device_config("x.json").replace("    solyx_fabric:", "    solyx_fabrik:");
    let (field, _, reason) = only(&yaml);
    assert_eq!(field, "defaults.device_config.solyx_fabrik");
    assert!(reason.contains("no device runs"), "{reason}");
}
