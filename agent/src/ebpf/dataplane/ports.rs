//! [`PortMap`]: which network interface each P4 port number of the switch
//! is, as configured (`--port 1=veth-a`), with the interface indexes they
//! had when the data plane attached to them.

use std::collections::BTreeMap;
use std::fmt;

use solyx_ebpf_common::packet_io::CPU_PORT;
use solyx_ebpf_common::MAX_PORTS;

use crate::p4rt::{DataplaneError, DataplaneErrorKind};

/// One configured port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The P4 port number (`0..512`, not 255).
    pub port: u16,
    /// The interface name in the switch's network namespace.
    pub interface: String,
}

impl PortSpec {
    /// Parses `PORT=INTERFACE`, e.g. `1=veth-a`.
    ///
    /// # Errors
    /// What is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (port, interface) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: expected PORT=INTERFACE, e.g. 1=eth1"))?;
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: {port:?} is not a port number"))?;
        let spec = Self {
            port,
            interface: interface.trim().to_owned(),
        };
        spec.check()?;
        Ok(spec)
    }

    /// Checks the port number and the interface name.
    ///
    /// # Errors
    /// What is wrong.
    pub fn check(&self) -> Result<(), String> {
        if u32::from(self.port) >= MAX_PORTS {
            return Err(format!(
                "port {} is not below {MAX_PORTS} (ports are 9 bits wide)",
                self.port
            ));
        }
        if self.port == CPU_PORT {
            return Err(format!(
                "port {CPU_PORT} is the CPU port (the controller); it cannot be an interface"
            ));
        }
        let name = &self.interface;
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\0']) {
            return Err(format!("{name:?} is not an interface name"));
        }
        Ok(())
    }
}

/// An attached port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The interface name.
    pub interface: String,
    /// Its index when the data plane attached to it.
    pub ifindex: u32,
}

/// P4 port number → interface, for the ports the data plane runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMap {
    ports: BTreeMap<u16, Port>,
}

impl PortMap {
    /// Records that `port` is `interface` with index `ifindex`.
    pub fn insert(&mut self, port: u16, interface: &str, ifindex: u32) {
        self.ports.insert(
            port,
            Port {
                interface: interface.to_owned(),
                ifindex,
            },
        );
    }

    /// The interface of `port`, if it has one.
    #[must_use]
    pub fn get(&self, port: u16) -> Option<&Port> {
        self.ports.get(&port)
    }

    /// Every port, in number order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &Port)> {
        self.ports.iter().map(|(p, i)| (*p, i))
    }

    /// The interface of `port` for an action parameter, or an
    /// `INVALID_ARGUMENT` naming the port and the ports there are.
    pub(crate) fn resolve(&self, port: u32, what: &str) -> Result<(u16, &Port), DataplaneError> {
        let known = u16::try_from(port)
            .ok()
            .and_then(|p| self.ports.get(&p).map(|i| (p, i)));
        known.ok_or_else(|| {
            let why = if port == u32::from(CPU_PORT) {
                " (it is the CPU port: send to the controller with the ACL's punt_to_cpu)"
            } else {
                ""
            };
            DataplaneError::new(
                DataplaneErrorKind::Invalid,
                format!("{what}: port {port} has no interface on this switch{why}; ports: {self}"),
            )
        })
    }
}

impl fmt::Display for PortMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ports.is_empty() {
            return f.write_str("none");
        }
        for (i, (port, p)) in self.ports.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{port}={}", p.interface)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_parse_and_check() {
        assert_eq!(
            PortSpec::parse("1=veth-a").expect("ok"),
            PortSpec {
                port: 1,
                interface: "veth-a".into()
            }
        );
        for bad in [
            "1",
            "x=eth0",
            "512=eth0",
            "255=eth0",
            "1=",
            "1=a/b",
            "1=sixteen-chars-xx",
        ] {
            assert!(PortSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_ports_are_named() {
        let mut ports = PortMap::default();
        ports.insert(1, "s1-eth1", 7);
        ports.insert(2, "s1-eth2", 8);
        assert_eq!(ports.resolve(2, "x").expect("known").1.ifindex, 8);
        let e = ports.resolve(9, "set_next_hop").expect_err("unknown");
        assert_eq!(e.kind, DataplaneErrorKind::Invalid);
        assert!(
            e.message.contains("port 9") && e.message.contains("1=s1-eth1, 2=s1-eth2"),
            "{}",
            e.message
        );
        let e = ports.resolve(255, "x").expect_err("cpu");
        assert!(e.message.contains("CPU port"), "{}", e.message);
    }
}
