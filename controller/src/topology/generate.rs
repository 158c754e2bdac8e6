//! Data-centre topologies built from their parameters: leaf-spine and
//! k-ary fat-tree, as topology files.

use std::time::Duration;

use super::file::{Defaults, DeviceSpec, EndpointSpec, LinkDefaults, LinkSpec, Role, TopologyFile};
use super::units::{Bandwidth, Delay};

struct Builder {
    devices: Vec<DeviceSpec>,
    links: Vec<LinkSpec>,
    addresses: bool,
}

impl Builder {
    fn device(&mut self, name: String, role: Role, ip: Option<String>) {
        let device_id = self.devices.len() as u64 + 1;
        self.devices.push(DeviceSpec {
            name,
            role,
            pipeline: None,
            device_id,
            switch_id: None,
            address: self
                .addresses
                .then(|| format!("127.0.0.1:{}", 50000 + device_id)),
            site: None,
            rack: None,
            pod: None,
            ip,
            mac: None,
            node: None,
        });
    }

    fn link(&mut self, a: &str, ap: u32, b: &str, bp: u32) {
        self.links.push(LinkSpec {
            a: EndpointSpec {
                device: a.into(),
                port: ap,
            },
            b: EndpointSpec {
                device: b.into(),
                port: bp,
            },
            bandwidth: None,
            delay: None,
        });
    }

    fn finish(self, name: String, bandwidth: Bandwidth, delay: Delay) -> TopologyFile {
        TopologyFile {
            name,
            defaults: Defaults {
                link: LinkDefaults {
                    bandwidth: Some(bandwidth),
                    delay: Some(delay),
                },
                probe_interval: Some(Delay(Duration::from_millis(100))),
                device_config: std::collections::BTreeMap::new(),
            },
            devices: self.devices,
            links: self.links,
        }
    }
}

/// A two-tier leaf-spine: every leaf linked to every spine, hosts under
/// leaves. Leaf ports: hosts from 1, then spines; spine port n goes to
/// leaf n. Hosts are `10.0.<leaf>.<n>/24`; devices get P4Runtime
/// addresses `127.0.0.1:50000+device_id`.
#[must_use]
pub fn leaf_spine(
    spines: u32,
    leaves: u32,
    hosts_per_leaf: u32,
    bandwidth: Bandwidth,
    delay: Delay,
) -> TopologyFile {
    let mut b = Builder {
        devices: Vec::new(),
        links: Vec::new(),
        addresses: true,
    };
    for s in 1..=spines {
        b.device(format!("spine{s}"), Role::Fabric, None);
    }
    for l in 1..=leaves {
        b.device(format!("leaf{l}"), Role::Fabric, None);
    }
    let mut h = 0;
    for l in 1..=leaves {
        for i in 1..=hosts_per_leaf {
            h += 1;
            b.device(
                format!("h{h}"),
                Role::Host,
                Some(format!("10.0.{l}.{i}/24")),
            );
            b.link(&format!("leaf{l}"), i, &format!("h{h}"), 1);
        }
        for s in 1..=spines {
            b.link(
                &format!("spine{s}"),
                l,
                &format!("leaf{l}"),
                hosts_per_leaf + s,
            );
        }
    }
    b.finish(format!("leaf-spine-{spines}x{leaves}"), bandwidth, delay)
}

/// A k-ary fat-tree (k even): k pods of k/2 edge and k/2 aggregation
/// switches, (k/2)² cores, `hosts_per_edge` hosts under each edge switch
/// (k/2 in the classic design). Names: `c<n>`, `a<pod>-<i>`, `e<pod>-<i>`,
/// `h<pod>-<edge>-<i>`; hosts are `10.<pod>.<edge>.<i+1>/24`.
///
/// # Panics
/// Never for even k ≥ 2; odd k is rounded down.
#[must_use]
pub fn fat_tree(k: u32, hosts_per_edge: u32, bandwidth: Bandwidth, delay: Delay) -> TopologyFile {
    let half = (k / 2).max(1);
    let mut b = Builder {
        devices: Vec::new(),
        links: Vec::new(),
        addresses: k <= 8,
    };
    for c in 1..=half * half {
        b.device(format!("c{c}"), Role::Fabric, None);
    }
    for pod in 1..=k {
        for i in 1..=half {
            b.device(format!("a{pod}-{i}"), Role::Fabric, None);
        }
        for i in 1..=half {
            b.device(format!("e{pod}-{i}"), Role::Fabric, None);
        }
    }
    for pod in 1..=k {
        for e in 1..=half {
            let edge = format!("e{pod}-{e}");
            for h in 1..=hosts_per_edge {
                let host = format!("h{pod}-{e}-{h}");
                b.device(
                    host.clone(),
                    Role::Host,
                    Some(format!("10.{pod}.{e}.{}/24", h + 1)),
                );
                b.link(&edge, h, &host, 1);
            }
            for a in 1..=half {
                b.link(&edge, hosts_per_edge + a, &format!("a{pod}-{a}"), e);
            }
        }
        for a in 1..=half {
            for j in 1..=half {
                let core = (a - 1) * half + j;
                b.link(&format!("a{pod}-{a}"), half + j, &format!("c{core}"), pod);
            }
        }
    }
    b.finish(format!("fat-tree-k{k}"), bandwidth, delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    #[test]
    fn generated_topologies_load_with_the_right_shape() {
        let bw = Bandwidth(1_000_000_000);
        let d = Delay(Duration::ZERO);
        let t = Topology::from_file(&leaf_spine(2, 4, 2, bw, d), "ls").unwrap();
        assert_eq!(t.devices().count(), 14);
        assert_eq!(t.links().count(), 2 * (8 + 8));
        let t = Topology::from_file(&fat_tree(4, 2, bw, d), "ft").unwrap();
        assert_eq!(t.devices().count(), 4 + 16 + 16);
        assert_eq!(t.links().count(), 2 * (16 + 16 + 16));
        let t = Topology::from_file(&fat_tree(16, 0, bw, d), "ft16").unwrap();
        assert_eq!(t.devices().count(), 64 + 256);
    }
}
