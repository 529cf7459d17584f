//! The runtime's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the sandbox for {program:?}: {source} (kiln runs RUN steps as root, with overlayfs and namespaces)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the runtime spec has no process.args: name the program to run")]
    NoProgram,
    #[error("the runtime spec asks for a {namespace} namespace, which kiln's runtime does not make yet (it makes pid, mount, uts, ipc and network namespaces)")]
    Namespace { namespace: String },
    #[error("unknown capability {name:?}: write names as CAP_CHOWN, CAP_NET_RAW, ...")]
    Capability { name: String },
    #[error("the runtime spec is invalid: {reason}")]
    Spec { reason: String },
    #[error("mount at {}: {reason}", destination.display())]
    Mount {
        destination: PathBuf,
        reason: String,
    },
    #[error("{}: a NUL byte in the path", path.display())]
    Path { path: PathBuf },
    #[error("reading the seccomp profile {}: {reason}", path.display())]
    SeccompProfile { path: PathBuf, reason: String },
    #[error("compiling the seccomp filter with libseccomp: {reason}")]
    Seccomp { reason: String },
    #[error("cgroup {}: {reason}", path.display())]
    Cgroup { path: PathBuf, reason: String },
    #[error("no such volume: {name}")]
    NoSuchVolume { name: String },
    #[error("volume name {name:?}: use letters, digits, _ . and -, starting with a letter or digit, two characters at least")]
    VolumeName { name: String },
    #[error(
        "remove volume {name}: it is in use by container {container}: remove the container first"
    )]
    VolumeInUse { name: String, container: String },
    #[error("No such container: {name}")]
    NoSuchContainer { name: String },
    #[error("{name} names more than one container: give more of its ID")]
    AmbiguousContainer { name: String },
    #[error("the container name \"/{name}\" is already in use by container \"{id}\": remove (or rename) that container to reuse the name")]
    NameInUse { name: String, id: String },
    #[error("container ID {id:?}: use letters, digits and _ . + -")]
    BundleId { id: String },
    #[error("container {id} exists already: delete it first (kiln runtime delete {id})")]
    BundleExists { id: String },
    #[error("container {id} does not exist")]
    NoSuchBundle { id: String },
    #[error("container {id} is {status}; this needs it {wanted}")]
    BundleStatus {
        id: String,
        status: String,
        wanted: &'static str,
    },
    #[error("reading the bundle's {}: {reason}", path.display())]
    BundleConfig { path: PathBuf, reason: String },
    #[error("network {name} not found: see kiln network ls")]
    NoSuchNetwork { name: String },
    #[error("network with name {name} already exists")]
    NetworkExists { name: String },
    #[error("{name} is a pre-defined network and cannot be removed")]
    PredefinedNetwork { name: String },
    #[error("network {name} has {containers} running container(s) on it: stop them or disconnect them first (kiln network disconnect {name} CONTAINER)")]
    NetworkInUse { name: String, containers: usize },
    #[error("{reason}")]
    NetworkRequest { reason: String },
    #[error("subnet {subnet} overlaps {other}, which a kiln network or a route of the host has: choose another --subnet")]
    SubnetOverlap { subnet: String, other: String },
    #[error("no free subnet left in the default pools (172.17-31.0.0/16, 192.168.0.0/16): remove unused networks (kiln network prune) or give --subnet")]
    NoFreeSubnet,
    #[error("address {address} is not in the network's subnet {subnet}")]
    AddressOutsideSubnet { address: String, subnet: String },
    #[error("address {address} is already in use on network {network}: choose another --ip")]
    AddressInUse { address: String, network: String },
    #[error("no free address left on network {network}")]
    NoFreeAddress { network: String },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("-p {spec}: {reason}")]
    PortSpec { spec: String, reason: String },
    #[error("Bind for {address} failed: port is already allocated ({protocol}: {reason}): choose another host port")]
    PortInUse {
        address: String,
        protocol: &'static str,
        reason: &'static str,
    },
    #[error("nftables refused kiln's rules (is the nft command installed? kiln's networks need it): {reason}")]
    Firewall { reason: String },
    #[error("networking: {op}: {source}")]
    Netlink {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}
