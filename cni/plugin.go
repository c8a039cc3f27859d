// Package cni is cors-cni, the chained CNI plugin of the `cni` redirect mode: at sandbox
// creation it installs, in the pod's network namespace, the same nftables redirect that cors-init
// installs in `init` mode (package sidecar/redirect), so the injected pod needs no capability.
//
// It acts only on pods whose annotations, handed over by the runtime through the
// io.kubernetes.cri.pod-annotations capability (containerd's CRI plugin passes every sandbox's
// annotations as that runtimeConfig key), carry contract.AnnotationRedirectMode=cni and the
// redirect ports; every other pod passes through untouched, with prevResult unchanged, so a
// node's pods that are not ours never wait on it or fail because of it.
package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/sidecar/redirect"
)

// PluginType is the plugin's "type" in a conflist, and its binary's name in the CNI bin dir.
const PluginType = "cors-cni"

// CapabilityPodAnnotations is the runtimeConfig key under which containerd's CRI plugin passes
// the pod's annotations, for plugins whose config declares the capability.
const CapabilityPodAnnotations = "io.kubernetes.cri.pod-annotations"

// SupportedVersions are the CNI spec versions the plugin speaks (1.1 adds GC and STATUS).
var SupportedVersions = version.PluginSupports("1.0.0", "1.1.0")

// NetConf is the plugin's configuration as the runtime sends it.
type NetConf struct {
	types.PluginConf
	// PrevResult is the previous plugin's result, kept as it came, so ADD returns it unchanged.
	PrevResult json.RawMessage `json:"prevResult,omitempty"`
	// RuntimeConfig holds what the runtime adds for the capabilities the plugin declares.
	RuntimeConfig struct {
		PodAnnotations map[string]string `json:"io.kubernetes.cri.pod-annotations,omitempty"`
	} `json:"runtimeConfig"`
}

// ParseConf decodes the plugin's stdin.
func ParseConf(stdin []byte) (*NetConf, error) {
	var conf NetConf
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, fmt.Errorf("%s: parsing the network configuration: %w", PluginType, err)
	}
	return &conf, nil
}

// Redirect says what the pod with these annotations needs: ok false for a pod that is not ours
// (no CNI-mode annotation, or no port to redirect), the rules otherwise. A pod of ours with an
// annotation that does not parse is an error: installing nothing would leave it without CORS.
func Redirect(annotations map[string]string) (rules redirect.Rules, ok bool, err error) {
	if annotations[contract.AnnotationRedirectMode] != contract.RedirectModeCNI {
		return rules, false, nil
	}
	ports, err := redirect.ParsePorts(annotations[contract.AnnotationRedirectPorts])
	if err != nil {
		return rules, false, fmt.Errorf("annotation %s: %w", contract.AnnotationRedirectPorts, err)
	}
	if len(ports) == 0 {
		return rules, false, nil
	}
	rules = redirect.Rules{ProxyPort: contract.DefaultInboundPort, Ports: ports}
	if v, set := annotations[contract.AnnotationProxyPort]; set {
		p, err := strconv.ParseUint(v, 10, 16)
		if err != nil || p == 0 {
			return rules, false, fmt.Errorf("annotation %s: %q is not a port number in 1..65535", contract.AnnotationProxyPort, v)
		}
		rules.ProxyPort = uint16(p)
	}
	if err := rules.Validate(); err != nil {
		return rules, false, fmt.Errorf("annotations %s/%s: %w", contract.AnnotationRedirectPorts, contract.AnnotationProxyPort, err)
	}
	return rules, true, nil
}

// Add installs the redirect for a pod of ours and writes the result to out: prevResult as it
// came, or an empty result of the config's version when the plugin runs first.
func Add(args *skel.CmdArgs, out io.Writer) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	rules, ours, err := Redirect(conf.RuntimeConfig.PodAnnotations)
	if err != nil {
		return err
	}
	if ours {
		if err := ns.WithNetNSPath(args.Netns, func(ns.NetNS) error { return redirect.Install(rules) }); err != nil {
			return fmt.Errorf("%s: installing the redirect in %s: %w", PluginType, args.Netns, err)
		}
	}
	return writeResult(conf, out)
}

// writeResult passes prevResult through unchanged (after checking it parses as a result of the
// config's version), or writes an empty result.
func writeResult(conf *NetConf, out io.Writer) error {
	if len(conf.PrevResult) == 0 || string(conf.PrevResult) == "null" {
		return (&current.Result{CNIVersion: conf.CNIVersion}).PrintTo(out)
	}
	if _, err := version.NewResult(conf.CNIVersion, conf.PrevResult); err != nil {
		return fmt.Errorf("%s: prevResult: %w", PluginType, err)
	}
	_, err := out.Write(conf.PrevResult)
	return err
}

// Del removes the redirect of a pod of ours. It is idempotent, and a success when the network
// namespace is gone (the table went with it) or was never given.
func Del(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	if _, ours, _ := Redirect(conf.RuntimeConfig.PodAnnotations); !ours || args.Netns == "" {
		return nil
	}
	err = ns.WithNetNSPath(args.Netns, func(ns.NetNS) error { return redirect.Cleanup(redirect.DefaultTable) })
	if netnsGone(err) {
		return nil
	}
	return err
}

// Check verifies that a pod of ours still has its redirect. A pod not ours, or whose network
// namespace is gone, has nothing to verify.
func Check(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	rules, ours, err := Redirect(conf.RuntimeConfig.PodAnnotations)
	if err != nil || !ours || args.Netns == "" {
		return err
	}
	err = ns.WithNetNSPath(args.Netns, func(ns.NetNS) error { return redirect.Check(rules) })
	if netnsGone(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", PluginType, err)
	}
	return nil
}

// GC has nothing to collect: all the plugin creates lives in pods' network namespaces, and goes
// with them.
func GC(*skel.CmdArgs) error { return nil }

// Status is ready whenever the binary runs: the plugin needs no daemon.
func Status(*skel.CmdArgs) error { return nil }

func netnsGone(err error) bool {
	var notExist ns.NSPathNotExistErr
	return errors.As(err, &notExist)
}

// Funcs are the plugin's commands for skel, writing ADD's result to out.
func Funcs(out io.Writer) skel.CNIFuncs {
	return skel.CNIFuncs{
		Add:    func(args *skel.CmdArgs) error { return Add(args, out) },
		Del:    Del,
		Check:  Check,
		GC:     GC,
		Status: Status,
	}
}
