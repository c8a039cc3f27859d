//go:build linux

package localcluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cors-webhook/cors-webhook/internal/imagebuild"
)

// The node's network: a bridge of its own with a pod range and a Service range that no other
// test or demo on the machine uses. The bridge's address is the node's address: the API server
// listens there, so pods reach it through the `kubernetes` Service.
const (
	NodeName        = "localhost" // the kubelet refuses a loopback node IP but answers to this name
	NodeBridge      = "cors-node0"
	NodePodCIDR     = "10.213.0.0/16"
	NodeIP          = "10.213.0.1" // the bridge's address, the pods' gateway
	NodeServiceCIDR = "10.214.0.0/16"
	// NodeAPIServiceIP is the `kubernetes` Service's ClusterIP (the range's first address).
	NodeAPIServiceIP = "10.214.0.1"
	// NodeDNSServiceIP is the cluster DNS Service's ClusterIP, the kubelet's clusterDNS.
	NodeDNSServiceIP  = "10.214.0.10"
	NodeClusterDomain = "cluster.local"
)

// Images the node itself runs; NodeOptions.Images must hold them.
const (
	PauseImage   = imagebuild.PauseRef // containerd's sandbox image
	CoreDNSImage = "registry.k8s.io/coredns/coredns:v1.15.0"
)

// nodePaths are the node's files, all under one work folder.
type nodePaths struct {
	work string
}

func (p nodePaths) containerdRoot() string  { return filepath.Join(p.work, "containerd", "root") }
func (p nodePaths) containerdState() string { return filepath.Join(p.work, "containerd", "state") }
func (p nodePaths) containerdSocket() string {
	return filepath.Join(p.work, "containerd", "containerd.sock")
}
func (p nodePaths) containerdConfig() string {
	return filepath.Join(p.work, "containerd", "config.toml")
}
func (p nodePaths) registryHosts() string   { return filepath.Join(p.work, "containerd", "certs.d") }
func (p nodePaths) cniConfDir() string      { return filepath.Join(p.work, "cni", "net.d") }
func (p nodePaths) cniBinDir() string       { return filepath.Join(p.work, "cni", "bin") }
func (p nodePaths) kubeletRoot() string     { return filepath.Join(p.work, "kubelet") }
func (p nodePaths) kubeletConfig() string   { return filepath.Join(p.work, "kubelet.yaml") }
func (p nodePaths) kubeProxyConfig() string { return filepath.Join(p.work, "kube-proxy.yaml") }
func (p nodePaths) pki() string             { return filepath.Join(p.work, "pki") }

// shimSockets is short: containerd refuses a shim socket folder longer than 42 characters.
func (p nodePaths) shimSockets() string { return filepath.Join(p.work, "s") }

// containerdConfig keeps every path of containerd's under the work folder, turns off what would
// touch the host (NRI's socket, /opt/containerd, imported configs), uses runc through the v2
// shim of bin/ (not a distribution's older one on PATH) with cgroupfs, looks for CNI plugins
// in a bin dir of the node's own first (where a node agent such as cors-cni installs; the host's
// /usr/lib/cni is never written), then Debian's, and pulls through the in-process registries (hosts.toml in certs.d).
// restrict_oom_score_adj: this machine refuses negative oom_score_adj values, even for root.
func containerdConfig(p nodePaths, binDir string) string {
	return fmt.Sprintf(`version = 4
root = %[1]q
state = %[2]q
imports = []
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = %[3]q
  [plugins.'io.containerd.server.v1.ttrpc']
    address = %[4]q
  [plugins.'io.containerd.internal.v1.opt']
    path = %[5]q
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = %[6]q
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = %[7]q
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = %[8]q
  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    enable_criu = false
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        runtime_path = %[12]q
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = %[9]q
          Root = %[10]q
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [%[13]q, '/usr/lib/cni']
      conf_dir = %[11]q
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
`,
		p.containerdRoot(), p.containerdState(), p.containerdSocket(), p.containerdSocket()+".ttrpc",
		filepath.Join(p.work, "containerd", "opt"), p.shimSockets(),
		PauseImage, p.registryHosts(), runcPath, filepath.Join(p.containerdState(), "runc"), p.cniConfDir(),
		filepath.Join(binDir, "containerd-shim-runc-v2"), p.cniBinDir())
}

// runcPath is Debian's runc (apt-get install runc).
const runcPath = "/usr/sbin/runc"

// cniConfig is a bridge network: every pod gets an address of NodePodCIDR on NodeBridge, with
// the bridge as gateway for the Service range only (pods have no route off the node); hairpin
// mode lets a pod reach itself through a Service. No masquerade rule and no portmap: nothing of
// it is added to the host's nftables.
func cniConfig(p nodePaths) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "cors-node",
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      NodeBridge,
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  []any{[]any{map[string]string{"subnet": NodePodCIDR, "gateway": NodeIP}}},
				"routes":  []any{map[string]string{"dst": NodeServiceCIDR}},
				"dataDir": filepath.Join(p.work, "cni", "ipam"),
			},
		}},
	}, "", "  ")
}

// kubeletConfig follows what runs on this machine: cgroup v1 (failCgroupV1: false) with the
// cgroupfs driver, oomScoreAdj 0 (negative values are refused here), images never collected
// (100/99), no evictions for a busy disk, pods capped below the machine (systemReserved), all
// files under the work folder. The kubelet listens on 127.0.0.1 only and serves only clients
// with a certificate of clientCA, i.e. the API server (which may then do anything: AlwaysAllow).
func kubeletConfig(p nodePaths, port, healthzPort int, clientCA string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
oomScoreAdj: 0
address: 127.0.0.1
port: %[1]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[2]d
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %[8]s
authorization:
  mode: AlwaysAllow
clusterDNS: [%[3]s]
clusterDomain: %[4]s
resolvConf: ""
containerRuntimeEndpoint: unix://%[5]s
imageServiceEndpoint: unix://%[5]s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%%"
  imagefs.available: "1%%"
  nodefs.inodesFree: "1%%"
systemReserved:
  cpu: 500m
  memory: 12Gi
enforceNodeAllocatable: [pods]
failSwapOn: false
serializeImagePulls: false
registerNode: true
podLogsDir: %[6]s
volumePluginDir: %[7]s
syncFrequency: 10s
fileCheckFrequency: 20s
nodeStatusUpdateFrequency: 2s
shutdownGracePeriod: 0s
`, port, healthzPort, NodeDNSServiceIP, NodeClusterDomain, p.containerdSocket(),
		filepath.Join(p.work, "pod-logs"), filepath.Join(p.work, "volume-plugins"), clientCA)
}

// kubeProxyConfig is nftables mode. masqueradeAll: Service traffic is SNATed to the node, so
// replies come back through it even between pods on one bridge; conntrack sysctls are left as
// they are (zeros); node ports only on the bridge's address.
func kubeProxyConfig(kubeconfig string, healthzPort, metricsPort int) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
hostnameOverride: %[1]s
clusterCIDR: %[2]s
clientConnection:
  kubeconfig: %[3]s
healthzBindAddress: 127.0.0.1:%[4]d
metricsBindAddress: 127.0.0.1:%[5]d
nodePortAddresses: ["%[6]s/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
nftables:
  masqueradeAll: true
  syncPeriod: 5s
  minSyncPeriod: 0s
`, NodeName, NodePodCIDR, kubeconfig, healthzPort, metricsPort, NodeIP)
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}
