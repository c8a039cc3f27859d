package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cors-webhook/cors-webhook/internal/localcluster"
	"github.com/cors-webhook/cors-webhook/internal/pipystandin"
)

// The requests of the guide's "Test" section, and one whose origin no allowOrigins entry
// matches. expect names the guide's expected response (examples/expected), if any.
var testRequests = []struct {
	comment string
	args    []string // after the URL
	expect  string
}{
	{"the guide's first test", []string{"-H", "Origin: http://www.bbb.com"}, "get-origin-bbb.txt"},
	{"the guide's second test: a preflight, answered by the sidecar", []string{"-H", "Origin: http://www.bbb.com", "-X", "OPTIONS"}, "options-origin-bbb.txt"},
	{"an origin that matches no allowOrigins entry: passed through, no access-control-* headers", []string{"-H", "Origin: http://www.ccc.com"}, ""},
}

// step5Test runs the guide's "Test" section.
func (d *demo) step5Test() error {
	if !d.local {
		return d.testThroughKubectlExec()
	}
	pod, err := d.readyPod("pipy", map[string]string{"app": "pipy-ok", "version": "v1"})
	if err != nil {
		return err
	}
	curlPod, err := d.readyPod("curl", map[string]string{"app": "curl"})
	if err != nil {
		return err
	}
	if pod.Status.PodIP == "" || curlPod.Status.PodIP == "" {
		return errors.New("the pods have no IP")
	}

	// Two network namespaces play the two pods, at their pod IPs.
	podNS, err := localcluster.NewNetNS("demo-pipy")
	if err != nil {
		return err
	}
	d.onCleanup("deleted network namespace "+podNS.Name, podNS.Delete)
	curlNS, err := localcluster.NewNetNS("demo-curl")
	if err != nil {
		return err
	}
	d.onCleanup("deleted network namespace "+curlNS.Name, curlNS.Delete)
	if err := localcluster.LinkNetNS(podNS, pod.Status.PodIP+"/16", curlNS, curlPod.Status.PodIP+"/16"); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "network namespace %s plays pod pipy/%s (%s)\n", podNS.Name, pod.Name, pod.Status.PodIP)
	fmt.Fprintf(d.out, "network namespace %s plays pod curl/%s (%s); a veth pair joins them\n", curlNS.Name, curlPod.Name, curlPod.Status.PodIP)
	d.fact("network namespaces %s and %s, joined by a veth pair, played the pods", podNS.Name, curlNS.Name)

	// The application container: a stand-in that answers as the guide's pipy script does.
	appPort := 0
	for _, ctr := range pod.Spec.Containers {
		port, err := d.startStandInApp(podNS, ctr)
		if err != nil {
			return err
		}
		if appPort == 0 {
			appPort = port
		}
	}

	// The init containers in order, as the kubelet runs them: cors-init to completion, then
	// cors-sidecar (restartPolicy Always) until its probes pass.
	probe := curlNS.HTTPClient()
	for _, ic := range pod.Spec.InitContainers {
		argv, volumes, err := d.containerArgv(pod, ic)
		if err != nil {
			return err
		}
		fmt.Fprintf(d.out, "\n# container %s (image %s): its args, run by the cors-sidecar built from this repository\n", ic.Name, ic.Image)
		for _, v := range volumes {
			fmt.Fprintf(d.out, "# %s\n", v)
		}
		fmt.Fprintf(d.out, "$ ip netns exec %s %s\n", podNS.Name, shellJoin(d.displayArgv(argv)))
		if ic.RestartPolicy == nil || *ic.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			res, err := podNS.Run(d.ctx, argv[0], argv[1:]...)
			if err != nil {
				return err
			}
			fmt.Fprint(d.out, res.Output())
			continue
		}
		if err := d.startSidecar(podNS, argv); err != nil {
			return err
		}
		for _, p := range []struct {
			kind  string
			probe *corev1.Probe
		}{{"startup", ic.StartupProbe}, {"readiness", ic.ReadinessProbe}} {
			if err := d.waitProbe(probe, pod, ic, p.kind, p.probe); err != nil {
				return err
			}
		}
	}
	if res, err := podNS.Run(d.ctx, "nft", "list", "ruleset"); err == nil {
		fmt.Fprintf(d.out, "\n$ ip netns exec %s nft list ruleset   # what cors-init installed\n%s", podNS.Name, res.Stdout)
	}

	fmt.Fprintf(d.out, "\n# The guide's commands (kubectl exec ${curl_client} -n curl -c curl -- curl ...), run with the real\n"+
		"# curl inside %s; pipy-ok.pipy:8080 is the pod's %s:%d (no cluster DNS or Service proxy here)\n", curlNS.Name, pod.Status.PodIP, appPort)
	url := fmt.Sprintf("http://%s:%d", pod.Status.PodIP, appPort)
	for _, r := range testRequests {
		args := append([]string{"-ksi", url}, r.args...)
		fmt.Fprintf(d.out, "\n# %s\n$ curl %s\n", r.comment, shellJoin(args))
		res, err := curlNS.Run(d.ctx, "curl", append(args, "--max-time", "10")...)
		if err != nil {
			return err
		}
		out := strings.ReplaceAll(res.Stdout, "\r\n", "\n")
		fmt.Fprintln(d.out, strings.TrimRight(out, "\n"))
		if err := d.checkResponse(out, r.expect, true); err != nil {
			return err
		}
	}
	d.fact("data path: the stand-in app, cors-sidecar redirect and cors-sidecar proxy with the pod's arguments and policy; %d curl requests answered as the guide shows", len(testRequests))
	return nil
}

// testThroughKubectlExec runs the guide's test commands as they are written.
func (d *demo) testThroughKubectlExec() error {
	curlPod, err := d.readyPod("curl", map[string]string{"app": "curl"})
	if err != nil {
		return err
	}
	for _, r := range testRequests {
		fmt.Fprintf(d.out, "\n# %s\n", r.comment)
		args := append([]string{"exec", curlPod.Name, "-n", "curl", "-c", "curl", "--", "curl", "-ksi", "http://pipy-ok.pipy:8080"}, r.args...)
		res, err := d.printKubectl("", "", args...)
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("kubectl exec: exit %d", res.ExitCode)
		}
		// The Service balances over v1 and v2: either body is right.
		if err := d.checkResponse(strings.ReplaceAll(res.Stdout, "\r\n", "\n"), r.expect, false); err != nil {
			return err
		}
	}
	d.fact("the guide's %d curl requests through kubectl exec answered as the guide shows", len(testRequests))
	return nil
}

// checkResponse compares a `curl -si` output with the seed's expected response: status, every
// header value (header order, date, vary and server may differ: docs/design.md section 5) and,
// when exactBody, the body. Without an expected response it checks that no access-control-*
// header was added.
func (d *demo) checkResponse(got, expectFile string, exactBody bool) error {
	g := parseResponse(got)
	if expectFile == "" {
		for name := range g.headers {
			if strings.HasPrefix(name, "access-control-") {
				return fmt.Errorf("a non-matching origin got %s", name)
			}
		}
		if g.status != "HTTP/1.1 200 OK" || !strings.HasPrefix(g.body, "Hi, I am PIPY-OK") {
			return fmt.Errorf("a non-matching origin got %q %q, want the application's answer", g.status, g.body)
		}
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(d.seed, "expected", expectFile))
	if err != nil {
		return err
	}
	w := parseResponse(string(raw))
	var problems []string
	if g.status != w.status {
		problems = append(problems, fmt.Sprintf("status %q, want %q", g.status, w.status))
	}
	for name, want := range w.headers {
		if name == "date" || name == "vary" || name == "server" {
			continue
		}
		if g.headers[name] != want {
			problems = append(problems, fmt.Sprintf("%s: %q, want %q", name, g.headers[name], want))
		}
	}
	if exactBody && g.body != w.body || !exactBody && (g.body == "") != (w.body == "") {
		problems = append(problems, fmt.Sprintf("body %q, want %q", g.body, w.body))
	}
	if len(problems) > 0 {
		return fmt.Errorf("the response differs from the guide's (%s): %s", expectFile, strings.Join(problems, "; "))
	}
	return nil
}

type response struct {
	status  string
	headers map[string]string
	body    string
}

func parseResponse(s string) response {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	head, body, _ := strings.Cut(s, "\n\n")
	lines := strings.Split(head, "\n")
	r := response{status: strings.TrimSpace(lines[0]), headers: map[string]string{}, body: strings.TrimRight(body, "\n")}
	for _, l := range lines[1:] {
		if name, value, ok := strings.Cut(l, ":"); ok {
			r.headers[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
		}
	}
	return r
}

// pipyMessage finds the body the guide's pipy script serves: new Message('...').
var pipyMessage = regexp.MustCompile(`new Message\('([^']*)'\)`)

// startStandInApp serves, inside the pod's network namespace, what the application container
// would: the body its pipy script answers with, on its container port. It runs in this process
// (on a socket opened inside the namespace), so no image is needed.
func (d *demo) startStandInApp(ns *localcluster.NetNS, ctr corev1.Container) (int, error) {
	m := pipyMessage.FindStringSubmatch(strings.Join(slices.Concat(ctr.Command, ctr.Args), " "))
	if m == nil || len(ctr.Ports) == 0 {
		return 0, fmt.Errorf("container %s: no `new Message('...')` in its command or no port: the demo can stand in only for the guide's pipy script", ctr.Name)
	}
	body, port := m[1], int(ctr.Ports[0].ContainerPort)
	ln, err := ns.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return 0, err
	}
	go pipystandin.Serve(ln, body)
	d.onCleanup("stopped the stand-in of container "+ctr.Name, ln.Close)
	fmt.Fprintf(d.out, "# container %s (image %s, `%s`): a stand-in answering %q on :%d\n",
		ctr.Name, ctr.Image, strings.Join(ctr.Command[:min(2, len(ctr.Command))], " ")+" ...", body, port)
	return port, nil
}

// containerArgv is what the container runs: its command and args, with the image's
// entrypoint (cors-sidecar) being the binary built from this repository, and paths under the
// container's volume mounts pointing at the demo's copies of those volumes, which volumes
// describes.
func (d *demo) containerArgv(pod *corev1.Pod, ctr corev1.Container) (argv, volumes []string, err error) {
	if !strings.Contains(ctr.Image, "cors-sidecar") {
		return nil, nil, fmt.Errorf("init container %s runs image %s, not cors-sidecar", ctr.Name, ctr.Image)
	}
	argv = slices.Concat(ctr.Command, ctr.Args)
	if len(ctr.Command) == 0 {
		argv = append([]string{"cors-sidecar"}, argv...)
	}
	if filepath.Base(argv[0]) != "cors-sidecar" {
		return nil, nil, fmt.Errorf("init container %s runs %s, not cors-sidecar", ctr.Name, argv[0])
	}
	argv[0] = d.bins.sidecar
	for _, m := range ctr.VolumeMounts {
		dir, files, err := d.materializeVolume(pod, m.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("container %s: %w", ctr.Name, err)
		}
		volumes = append(volumes, fmt.Sprintf("volume %s (mounted at %s): %s", m.Name, m.MountPath, strings.Join(files, ", ")))
		for i, a := range argv {
			prefix, path := "", a
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "-") {
				prefix, path = k+"=", v // --flag=/mount/path
			}
			mount := strings.TrimSuffix(m.MountPath, "/")
			if path == mount || strings.HasPrefix(path, mount+"/") {
				argv[i] = prefix + dir + strings.TrimPrefix(path, mount)
			}
		}
	}
	return argv, volumes, nil
}

// materializeVolume writes a downwardAPI volume of the pod into a folder, as the kubelet
// projects it, and returns the folder and what each file holds.
func (d *demo) materializeVolume(pod *corev1.Pod, name string) (dir string, files []string, err error) {
	var vol *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.DownwardAPI == nil {
		return "", nil, fmt.Errorf("volume %s: only downwardAPI volumes are projected here", name)
	}
	dir = filepath.Join(d.tmp, "volumes", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	for _, item := range vol.DownwardAPI.Items {
		if item.FieldRef == nil {
			return "", nil, fmt.Errorf("volume %s: item %s is not a fieldRef", name, item.Path)
		}
		value, err := fieldValue(pod, item.FieldRef.FieldPath)
		if err != nil {
			return "", nil, fmt.Errorf("volume %s: %w", name, err)
		}
		path := filepath.Join(dir, item.Path)
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return "", nil, err
		}
		files = append(files, fmt.Sprintf("%s = the pod's %s", path, item.FieldRef.FieldPath))
	}
	return dir, files, nil
}

var fieldPathKey = regexp.MustCompile(`^metadata\.(annotations|labels)\['([^']+)'\]$`)

func fieldValue(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	}
	if m := fieldPathKey.FindStringSubmatch(path); m != nil {
		if m[1] == "annotations" {
			return pod.Annotations[m[2]], nil
		}
		return pod.Labels[m[2]], nil
	}
	return "", fmt.Errorf("field %s is not supported here", path)
}

// startSidecar starts the native sidecar's process in the pod's network namespace and stops
// it with SIGTERM at clean-up, as the kubelet does.
func (d *demo) startSidecar(ns *localcluster.NetNS, argv []string) error {
	log := &localcluster.SyncBuffer{}
	// Not bound to the demo's context: on Ctrl-C it gets SIGTERM at clean-up, not SIGKILL.
	cmd := ns.Command(context.Background(), argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = localcluster.ChildProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	d.onCleanup("stopped cors-sidecar proxy (SIGTERM)", func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			return nil
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			return errors.New("did not stop within 30s; killed")
		}
	})
	d.sidecarLog = log
	d.sidecarDone = done
	return nil
}

// waitProbe waits until an HTTP probe of the container passes, sent from the client's network
// namespace to the pod IP (a kubelet probes from the node).
func (d *demo) waitProbe(hc *http.Client, pod *corev1.Pod, ctr corev1.Container, kind string, p *corev1.Probe) error {
	if p == nil || p.HTTPGet == nil {
		return nil
	}
	port := p.HTTPGet.Port.IntValue()
	if port == 0 {
		for _, cp := range ctr.Ports {
			if cp.Name == p.HTTPGet.Port.String() {
				port = int(cp.ContainerPort)
			}
		}
	}
	url := fmt.Sprintf("http://%s%s", net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port)), p.HTTPGet.Path)
	return d.waitFor(fmt.Sprintf("the %s probe of %s (GET %s)", kind, ctr.Name, url), 20*time.Second, func() (bool, string, error) {
		select {
		case err := <-d.sidecarDone:
			d.sidecarDone <- err
			return false, "", fmt.Errorf("%s exited: %v\n%s", ctr.Name, err, d.sidecarLog.String())
		default:
		}
		resp, err := hc.Get(url)
		if err != nil {
			return false, "not answering yet", nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status, nil
	})
}

// displayArgv names the binary as the container does.
func (d *demo) displayArgv(argv []string) []string {
	return append([]string{"cors-sidecar"}, argv[1:]...)
}
