//! The testbed: namespaces, veths and port names, created, configured and
//! removed by name on drop.

use super::*;

// ---------------------------------------------------------------------------
// Testbed
// ---------------------------------------------------------------------------

/// Namespaces, veths and forwarders of one run. Dropping it stops the
/// forwarders and deletes the veths and namespaces by name.
pub(crate) struct Testbed {
    pub(crate) prefix: String,
    pub(crate) senders: usize,
    pub(crate) gen: String,
    pub(crate) dut: String,
    pub(crate) sink: String,
    /// Namespaces created so far.
    pub(crate) namespaces: Vec<String>,
    /// (namespace, name) of one end of every veth pair created so far.
    pub(crate) veths: Vec<(String, String)>,
    /// The receiver's TCX drop program and its links.
    pub(crate) drop_program: Option<sys::BpfFd>,
    pub(crate) sink_links: Vec<sys::BpfFd>,
    /// The fabric stage and its pin instance.
    pub(crate) fabric: Option<Fabric>,
    /// Its egress (INT transit) stage.
    pub(crate) int: Option<IntTransit>,
    pub(crate) pin_instance: String,
    /// Whether the fabric stage routes IPv4 (its route stage took the
    /// route).
    pub(crate) ebpf_ipv4: bool,
    /// The redirect-only program.
    pub(crate) floor_program: Option<sys::BpfFd>,
    /// Links of the current phase (floor program, drops before OVS).
    pub(crate) phase_links: Vec<sys::BpfFd>,
    pub(crate) ovs: Option<Ovs>,
}

/// Names of the ports.
impl Testbed {
    pub(crate) fn gen_port(&self, k: usize) -> String {
        format!("{}-g{k}", self.prefix)
    }
    pub(crate) fn dut_in(&self, k: usize) -> String {
        format!("{}-i{k}", self.prefix)
    }
    pub(crate) fn dut_out(&self) -> String {
        format!("{}-o", self.prefix)
    }
    pub(crate) fn sink_port(&self) -> String {
        format!("{}-s", self.prefix)
    }
    pub(crate) fn direct_port(&self, k: usize) -> String {
        format!("{}-d{k}", self.prefix)
    }
    pub(crate) fn direct_sink(&self, k: usize) -> String {
        format!("{}-r{k}", self.prefix)
    }
}

/// Fixed MACs: `02:5b:<role>:00:00:<index>`.
pub(crate) fn mac(role: u8, index: usize) -> [u8; 6] {
    [0x02, 0x5b, role, 0, 0, (index & 0xff) as u8]
}
pub(crate) const ROLE_GEN: u8 = 1;
pub(crate) const ROLE_DUT_IN: u8 = 2;
pub(crate) const ROLE_DUT_OUT: u8 = 3;
pub(crate) const ROLE_SINK: u8 = 4;
pub(crate) const ROLE_DIRECT: u8 = 5;
pub(crate) const ROLE_DIRECT_SINK: u8 = 6;

pub(crate) fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// OpenFlow port numbers in the OVS bridge.
pub(crate) fn ovs_in_port(k: usize) -> usize {
    k + 1
}
pub(crate) const OVS_OUT_PORT: usize = 100;
/// Fabric port numbers.
pub(crate) fn fabric_in_port(k: usize) -> u16 {
    (k + 1) as u16
}
pub(crate) const FABRIC_OUT_PORT: u16 = 100;

impl Testbed {
    /// Creates the three namespaces (empty).
    pub(crate) fn create(senders: usize) -> Result<Self> {
        let prefix = format!("sxb{}", std::process::id());
        let mut bed = Self {
            gen: format!("{prefix}-gen"),
            dut: format!("{prefix}-dut"),
            sink: format!("{prefix}-sink"),
            pin_instance: prefix.clone(),
            prefix,
            senders,
            namespaces: Vec::new(),
            veths: Vec::new(),
            drop_program: None,
            sink_links: Vec::new(),
            fabric: None,
            int: None,
            ebpf_ipv4: false,
            floor_program: None,
            phase_links: Vec::new(),
            ovs: None,
        };
        for ns in [bed.gen.clone(), bed.dut.clone(), bed.sink.clone()] {
            // Left over by a killed run with the same PID: start clean.
            let _ = Command::new(tool("ip"))
                .args(["netns", "del", &ns])
                .output();
            ip(&["netns", "add", &ns])?;
            bed.namespaces.push(ns.clone());
            // No IPv6 on the test links (no DAD, no router solicitations).
            for key in [
                "net.ipv6.conf.all.disable_ipv6",
                "net.ipv6.conf.default.disable_ipv6",
            ] {
                sysctl(&ns, key, "1")?;
            }
            for key in [
                "net.ipv4.conf.all.rp_filter",
                "net.ipv4.conf.default.rp_filter",
            ] {
                sysctl(&ns, key, "0")?;
            }
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(bed)
    }

    /// Veths, addresses, routes, offloads and the receiver's drops.
    pub(crate) fn configure(&mut self) -> Result<()> {
        let (gen, dut, sink) = (self.gen.clone(), self.dut.clone(), self.sink.clone());
        for k in 0..self.senders {
            self.add_veth(
                (&gen, &self.gen_port(k), mac(ROLE_GEN, k)),
                (&dut, &self.dut_in(k), mac(ROLE_DUT_IN, k)),
            )?;
            self.add_veth(
                (&gen, &self.direct_port(k), mac(ROLE_DIRECT, k)),
                (&sink, &self.direct_sink(k), mac(ROLE_DIRECT_SINK, k)),
            )?;
        }
        self.add_veth(
            (&dut, &self.dut_out(), mac(ROLE_DUT_OUT, 0)),
            (&sink, &self.sink_port(), mac(ROLE_SINK, 0)),
        )?;

        // Forwarding namespace: one /24 per input port, the receiver behind
        // a gateway with a permanent neighbour entry (no ARP on the path).
        sysctl(&dut, "net.ipv4.ip_forward", "0")?;
        for k in 0..self.senders {
            let port = self.dut_in(k);
            ip(&[
                "-n",
                &dut,
                "addr",
                "add",
                &format!("10.78.{k}.1/24"),
                "dev",
                &port,
            ])?;
        }
        let out = self.dut_out();
        ip(&["-n", &dut, "addr", "add", "10.79.0.1/24", "dev", &out])?;
        ip(&[
            "-n",
            &sink,
            "addr",
            "add",
            "10.79.0.2/24",
            "dev",
            &self.sink_port(),
        ])?;
        ip(&[
            "-n",
            &dut,
            "neigh",
            "replace",
            "10.79.0.2",
            "lladdr",
            &mac_text(mac(ROLE_SINK, 0)),
            "dev",
            &out,
            "nud",
            "permanent",
        ])?;
        ip(&[
            "-n",
            &dut,
            "route",
            "add",
            "10.80.0.0/16",
            "via",
            "10.79.0.2",
            "dev",
            &out,
        ])?;

        // Receiver: drop everything at TC ingress, before any stack runs.
        let drop = sys::BpfFd::load_tc("sxb_drop", &sys::drop_program())
            .context("load the receiver's TCX drop program")?;
        let mut sink_ports = vec![self.sink_port()];
        sink_ports.extend((0..self.senders).map(|k| self.direct_sink(k)));
        for port in &sink_ports {
            let link = attach_tcx_ingress(&sink, &drop, port)
                .with_context(|| format!("attach the TCX drop to {port}"))?;
            self.sink_links.push(link);
        }
        self.drop_program = Some(drop);
        Ok(())
    }

    /// Creates a veth pair with both ends in their namespaces, up, with
    /// offloads off.
    pub(crate) fn add_veth(
        &mut self,
        a: (&str, &str, [u8; 6]),
        b: (&str, &str, [u8; 6]),
    ) -> Result<()> {
        let ((ns_a, name_a, mac_a), (ns_b, name_b, mac_b)) = (a, b);
        ip(&[
            "link",
            "add",
            name_a,
            "address",
            &mac_text(mac_a),
            "netns",
            ns_a,
            "type",
            "veth",
            "peer",
            "name",
            name_b,
            "address",
            &mac_text(mac_b),
            "netns",
            ns_b,
        ])?;
        self.veths.push((ns_a.to_owned(), name_a.to_owned()));
        for (ns, name) in [(ns_a, name_a), (ns_b, name_b)] {
            // One skb per frame on every path: no GRO, no segmentation.
            run_in(
                ns,
                "ethtool",
                &["-K", name, "gro", "off", "gso", "off", "tso", "off"],
            )?;
            ip(&["-n", ns, "link", "set", name, "up"])?;
        }
        Ok(())
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // Forwarders first (they hold the ports), then the ports, then the
        // namespaces, then the pins.
        self.phase_links.clear();
        self.sink_links.clear();
        self.drop_program = None;
        self.floor_program = None;
        self.int = None;
        self.fabric = None;
        self.ovs = None;
        for (ns, veth) in &self.veths {
            let _ = Command::new(tool("ip"))
                .args(["-n", ns, "link", "del", veth])
                .output();
        }
        for ns in &self.namespaces {
            if let Ok(output) = Command::new(tool("ip")).args(["netns", "del", ns]).output() {
                if !output.status.success() {
                    eprintln!(
                        "removing namespace {ns}: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    );
                }
            }
        }
        if let Err(e) = remove_instance(Path::new(DEFAULT_PIN_ROOT), &self.pin_instance) {
            eprintln!("removing the pins of {}: {e}", self.pin_instance);
        }
    }
}
