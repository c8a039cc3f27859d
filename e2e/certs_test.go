package e2e

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	cmutil "github.com/cert-manager/cert-manager/pkg/util"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	"github.com/go-logr/logr/funcr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/certs"
	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/atomicdir"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestCertsSelfSignedRotation runs two replicas of the Helm-installed webhook behind a TCP
// balancer (standing in for the Service) with the built-in CA, forces a serving-certificate
// rotation and then a CA rotation while admission requests and fresh TLS handshakes run in a
// loop, and shows that not one of them fails. The second replica, started after the first had
// issued the certificate, serves the same certificate.
func TestCertsSelfSignedRotation(t *testing.T) {
	chart := helmChartDir(t)
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{})
	const ns, release, name = "cors-rotation", "cors-webhook", "cors-webhook"
	ctx := context.Background()

	lb := certsStartBalancer(t)
	helmInstall(t, c, chart, release, ns,
		"--set", "plugin.declare=true",
		"--set", "webhook.devURL=https://"+lb.addr,
		// A short CA propagation delay keeps the test fast; the flag comes from the chart.
		"--set", "controller.extraArgs={--ca-propagation-delay=2s}")

	ctrl := helmStartController(t, c, bin, ns, name+"-controller")
	a := helmStartServe(t, c, bin, ns, name, helmFreePort(t))
	lb.add(a.addr)
	bundle := helmWaitCABundle(t, c, name, nil)
	helmCheckServedBy(t, lb.addr, bundle)
	helmCheckAdmission(t, c, "rotation-app")

	secret := func() *corev1.Secret {
		s := &corev1.Secret{}
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-tls"}, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := certsLeafOf(t, secret().Data[corev1.TLSCertKey])

	// The second replica starts after the first has issued the certificate, and is not the
	// leader: it can only have the certificate from the Secret.
	b := helmStartServe(t, c, bin, ns, name, helmFreePort(t))
	t.Run("a replica started later serves the same certificate", func(t *testing.T) {
		for _, addr := range []string{a.addr, b.addr} {
			if got := certsServedLeaf(t, addr); !got.Equal(first) {
				t.Fatalf("%s serves %s, want the Secret's %s", addr, certs.Fingerprint(got), certs.Fingerprint(first))
			}
		}
		if !strings.Contains(b.log.String(), "serving certificate loaded") || strings.Contains(b.log.String(), "keeping the webhook certificate as leader") {
			t.Fatalf("the second replica must load the certificate from the Secret")
		}
		if !strings.Contains(ctrl.Log.String(), "keeping the webhook certificate as leader") {
			t.Fatalf("the controller must keep the certificate")
		}
	})
	lb.add(b.addr)

	t.Run("rotations under load fail no request", func(t *testing.T) {
		load := certsStartLoad(t, c, lb.addr, name, "rotation-app")
		load.waitFor(t, 30)

		t.Log("forcing a serving certificate rotation")
		c.MustKubectl(t, "annotate", "secret", name+"-tls", "-n", ns, certs.AnnotationRotate+"=cert", "--overwrite")
		var second *x509.Certificate
		framework.Eventually(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
			s := secret()
			if _, pending := s.Annotations[certs.AnnotationRotate]; pending {
				return false, "rotation annotation still set"
			}
			second = certsLeafOf(t, s.Data[corev1.TLSCertKey])
			for _, addr := range []string{a.addr, b.addr} {
				if got := certsServedLeaf(t, addr); !got.Equal(second) || got.Equal(first) {
					return false, addr + " does not serve the new certificate yet"
				}
			}
			return true, ""
		})
		load.waitFor(t, 30)

		t.Log("forcing a CA rotation")
		oldCA := certsLeafOf(t, bundle)
		c.MustKubectl(t, "annotate", "secret", name+"-tls", "-n", ns, certs.AnnotationRotate+"=ca", "--overwrite")
		var newCA *x509.Certificate
		framework.Eventually(t, 30*time.Second, 50*time.Millisecond, func() (bool, string) {
			cas := certsParseAll(t, helmWebhookCABundles(t, c, name)[0])
			if len(cas) != 2 || !cas[1].Equal(oldCA) {
				return false, fmt.Sprintf("caBundle has %d CAs, want [new, old]", len(cas))
			}
			newCA = cas[0]
			for _, addr := range []string{a.addr, b.addr} {
				if got := certsServedLeaf(t, addr); got.CheckSignatureFrom(newCA) != nil {
					return false, addr + " does not serve a certificate of the new CA yet"
				}
			}
			return true, ""
		})
		load.waitFor(t, 30)
		ok, failed, handshakes := load.stop()
		t.Logf("%d admission requests and %d fresh TLS handshakes during two rotations, %d failed", ok, handshakes, failed)
		if failed != 0 {
			t.Fatalf("%d requests failed during rotation; first errors:\n%s", failed, strings.Join(load.errors(), "\n"))
		}
		if ok < 90 || handshakes < 10 {
			t.Fatalf("too little load to show anything: %d requests, %d handshakes", ok, handshakes)
		}
	})
}

// certsCertManagerFlow installs the chart in cert-manager mode next to cert-manager's real CRDs
// and its real CA injector: the test stands in for cert-manager's controller (which is not a
// served Go module) by issuing the chart's Certificates with cert-manager's own PKI code into
// the Secrets cert-manager would write; cainjector then fills both caBundles, and the server
// serves the "mounted" Secret and picks up a renewal without a restart.
func certsCertManagerFlow(t *testing.T, c *framework.Cluster, chart, bin string) {
	ctx := context.Background()
	crds, err := envtest.InstallCRDs(c.Config, envtest.CRDInstallOptions{Paths: []string{certsCertManagerCRDDir(t)}, ErrorIfPathMissing: true})
	if err != nil {
		t.Fatalf("installing cert-manager's CRDs: %v", err)
	}
	t.Logf("installed %d cert-manager CRDs", len(crds))

	const ns, release, name = "cors-cm", "cors-cm", "cors-cm-cors-webhook"
	// The Plugin is cluster-scoped: one left by an earlier failed subtest would belong to
	// another release.
	c.Kubectl(t, "delete", "plugin.plugin.flomesh.io", "cors-policy", "--ignore-not-found")
	port := helmFreePort(t)
	rel := helmInstall(t, c, chart, release, ns,
		"--set", "certs.mode=cert-manager",
		"--set", "plugin.declare=true",
		"--set", fmt.Sprintf("webhook.devURL=https://127.0.0.1:%d", port))
	helmCheckObjectsExist(t, c, rel)
	helmCheckPodSecurity(t, c, ns, name)
	rbacCheckRights(t, c, ns, name, "cert-manager")

	cl := certsClient(t, c)
	var caCrt, servingCrt cmapi.Certificate
	var selfSigned, caIssuer cmapi.Issuer
	for key, obj := range map[string]client.Object{name + "-ca": &caCrt, name + "-serving": &servingCrt} {
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: key}, obj); err != nil {
			t.Fatalf("Certificate %s: %v", key, err)
		}
	}
	for key, obj := range map[string]client.Object{name + "-selfsigned": &selfSigned, name + "-ca": &caIssuer} {
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: key}, obj); err != nil {
			t.Fatalf("Issuer %s: %v", key, err)
		}
	}
	if selfSigned.Spec.SelfSigned == nil || caIssuer.Spec.CA == nil || caIssuer.Spec.CA.SecretName != caCrt.Spec.SecretName ||
		!caCrt.Spec.IsCA || caCrt.Spec.IssuerRef.Name != selfSigned.Name || servingCrt.Spec.IssuerRef.Name != caIssuer.Name ||
		servingCrt.Spec.SecretName != name+"-tls" {
		t.Fatalf("the chart's issuer chain is not selfSigned Issuer -> CA Certificate -> CA Issuer -> serving Certificate")
	}
	if !certsContains(servingCrt.Spec.DNSNames, name+"."+ns+".svc") || !certsContains(servingCrt.Spec.IPAddresses, "127.0.0.1") {
		t.Fatalf("serving Certificate names: %v %v", servingCrt.Spec.DNSNames, servingCrt.Spec.IPAddresses)
	}

	certsStartCAInjector(t, c)
	for _, b := range helmWebhookCABundles(t, c, name) {
		if len(b) != 0 {
			t.Fatalf("caBundle set before any certificate was issued")
		}
	}

	caCert, caKey, _ := certsIssue(t, cl, &caCrt, nil, nil)
	_, _, serving := certsIssue(t, cl, &servingCrt, caCert, caKey)
	caPEM, err := pki.EncodeX509(caCert)
	if err != nil {
		t.Fatal(err)
	}
	bundle := helmWaitCABundle(t, c, name, caPEM)
	t.Log("cainjector filled the caBundle of both webhook configurations")

	certDir := t.TempDir()
	certsWriteMount(t, certDir, serving)
	helmStartController(t, c, bin, ns, name+"-controller")
	srv := helmStartServe(t, c, bin, ns, name, port, "--cert-dir="+certDir)
	first := helmCheckServedBy(t, srv.addr, bundle)
	helmCheckAdmission(t, c, "helm-app-certmanager")

	t.Run("a renewed certificate is served without a restart", func(t *testing.T) {
		_, _, renewed := certsIssue(t, cl, &servingCrt, caCert, caKey)
		certsWriteMount(t, certDir, renewed)
		want := certsLeafOf(t, renewed.Data[corev1.TLSCertKey])
		if want.Equal(first) {
			t.Fatal("renewal issued the same certificate")
		}
		framework.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
			return helmCheckServedBy(t, srv.addr, bundle).Equal(want), "still serving the old certificate"
		})
	})

	helmCheckUpgrade(t, c, chart, release, ns, name)
	helmCheckUninstall(t, c, release, ns, name)
}

// certsCertManagerCRDDir is deploy/crds of the cert-manager module this repository requires.
func certsCertManagerCRDDir(t *testing.T) string {
	t.Helper()
	root, err := localcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("locating the cert-manager module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
	if _, err := os.Stat(filepath.Join(dir, "cert-manager.io_certificates.yaml")); err != nil {
		t.Fatalf("cert-manager's CRDs: %v", err)
	}
	return dir
}

func certsClient(t *testing.T, c *framework.Cluster) client.Client {
	t.Helper()
	cl, err := client.New(c.Config, client.Options{Scheme: certsScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// certsScheme is cainjector's scheme (cert-manager's cmd/cainjector): the built-in kinds,
// cert-manager's, CRDs and APIServices.
func certsScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, cmapi.AddToScheme, apiextensionsv1.AddToScheme, apiregistrationv1.AddToScheme, v1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// certsStartCAInjector runs cert-manager's CA injector (pkg/controller/cainjector) for webhook
// configurations, set up as cert-manager's own cainjector command sets up its manager.
func certsStartCAInjector(t *testing.T, c *framework.Cluster) {
	t.Helper()
	log := &helmLog{}
	// Its field manager comes from the user agent, as in cert-manager's cainjector command.
	mgr, err := ctrl.NewManager(cmutil.RestConfigWithUserAgent(c.Config, "cainjector"), ctrl.Options{
		Scheme:                 certsScheme(t),
		Logger:                 funcr.New(func(prefix, args string) { fmt.Fprintln(log, prefix, args) }, funcr.Options{}),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{ReaderFailOnMissingInformer: true},
		// cainjector reads Secrets directly instead of caching every Secret of the cluster.
		Client:     client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Controller: ctrlconfig.Controller{SkipNameValidation: ptrTo(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = cainjector.RegisterAllInjectors(ctx, mgr, cainjector.SetupOptions{
		EnableCertificatesDataSource: true,
		EnabledReconcilersFor: map[string]bool{
			cainjector.MutatingWebhookConfigurationName:   true,
			cainjector.ValidatingWebhookConfigurationName: true,
		},
	})
	if err != nil {
		cancel()
		t.Fatalf("cainjector.RegisterAllInjectors: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("cainjector: %v", err)
		}
		if t.Failed() {
			t.Logf("cainjector's manager log:\n%s", helmTail(log.String(), 40))
		}
	})
}

// certsIssue does what cert-manager's controller does for crt: a key as its privateKey asks, a
// certificate from cert-manager's template for it, signed by the issuer (self-signed when
// issuer is nil), stored in spec.secretName with ca.crt and the annotations cainjector reads.
func certsIssue(t *testing.T, cl client.Client, crt *cmapi.Certificate, issuer *x509.Certificate, issuerKey crypto.Signer) (*x509.Certificate, crypto.Signer, *corev1.Secret) {
	t.Helper()
	key, err := pki.GeneratePrivateKeyForCertificate(crt)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := pki.CertificateTemplateFromCertificate(crt)
	if err != nil {
		t.Fatal(err)
	}
	signer, signerKey := issuer, issuerKey
	if issuer == nil {
		signer, signerKey = tmpl, key
	}
	certPEM, cert, err := pki.SignCertificate(tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	var enc cmapi.PrivateKeyEncoding
	if crt.Spec.PrivateKey != nil {
		enc = crt.Spec.PrivateKey.Encoding
	}
	keyPEM, err := pki.EncodePrivateKey(key, enc)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := certPEM
	if issuer != nil {
		if caPEM, err = pki.EncodeX509(issuer); err != nil {
			t.Fatal(err)
		}
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: crt.Namespace, Name: crt.Spec.SecretName}}
	_, err = ctrl.CreateOrUpdate(context.Background(), cl, secret, func() error {
		secret.Type = corev1.SecretTypeTLS
		if secret.Labels == nil {
			secret.Labels = map[string]string{}
		}
		if crt.Spec.SecretTemplate != nil {
			for k, v := range crt.Spec.SecretTemplate.Labels {
				secret.Labels[k] = v
			}
		}
		secret.Labels["controller.cert-manager.io/fao"] = "true"
		secret.Annotations = map[string]string{
			cmapi.CertificateNameKey:       crt.Name,
			cmapi.IssuerNameAnnotationKey:  crt.Spec.IssuerRef.Name,
			cmapi.IssuerKindAnnotationKey:  crt.Spec.IssuerRef.Kind,
			cmapi.IssuerGroupAnnotationKey: crt.Spec.IssuerRef.Group,
			cmapi.CommonNameAnnotationKey:  cert.Subject.CommonName,
			cmapi.AltNamesAnnotationKey:    strings.Join(cert.DNSNames, ","),
			cmapi.IPSANAnnotationKey:       strings.Join(ips, ","),
		}
		secret.Data = map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM, cmmeta.TLSCAKey: caPEM}
		return nil
	})
	if err != nil {
		t.Fatalf("writing Secret %s: %v", crt.Spec.SecretName, err)
	}
	return cert, key, secret
}

// certsWriteMount lays out a Secret as the kubelet mounts it (one file per key, replaced
// atomically through the ..data symlink), for the server's --cert-dir.
func certsWriteMount(t *testing.T, dir string, secret *corev1.Secret) {
	t.Helper()
	if err := atomicdir.Write(dir, secret.Data, 0o400); err != nil {
		t.Fatal(err)
	}
}

func certsContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func certsParseAll(t *testing.T, pemBytes []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, pemBytes = pem.Decode(pemBytes)
		if block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("bad certificate in PEM: %v", err)
		}
		out = append(out, c)
	}
}

func certsLeafOf(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	all := certsParseAll(t, pemBytes)
	if len(all) == 0 {
		t.Fatalf("no certificate in %q", pemBytes)
	}
	return all[0]
}

// certsServedLeaf is the certificate a server presents on a new connection.
func certsServedLeaf(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test compares the certificate itself
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// certsBalancer is a TCP round-robin balancer standing in for the webhook Service: TLS passes
// through to the replicas, so each handshake is with a replica.
type certsBalancer struct {
	addr     string
	ln       net.Listener
	mu       sync.Mutex
	backends []string
	next     int
	conns    map[net.Conn]struct{}
}

func certsStartBalancer(t *testing.T) *certsBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &certsBalancer{addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	go b.serve()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for c := range b.conns {
			c.Close()
		}
	})
	return b
}

func (b *certsBalancer) add(backend string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append(b.backends, backend)
}

func (b *certsBalancer) serve() {
	for {
		in, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if len(b.backends) == 0 {
			b.mu.Unlock()
			in.Close()
			continue
		}
		backend := b.backends[b.next%len(b.backends)]
		b.next++
		b.conns[in] = struct{}{}
		b.mu.Unlock()
		go b.pipe(in, backend)
	}
}

func (b *certsBalancer) pipe(in net.Conn, backend string) {
	defer func() {
		in.Close()
		b.mu.Lock()
		delete(b.conns, in)
		b.mu.Unlock()
	}()
	out, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
}

// certsLoad sends admission requests through the API server (server-side dry runs of a
// PluginConfig update and of a pod creation, so each calls a webhook) and opens fresh TLS
// connections verified with the caBundle that the API server currently uses, until stopped.
type certsLoad struct {
	ok, failed, handshakes atomic.Int64
	mu                     sync.Mutex
	errs                   []string
	stopCh                 chan struct{}
	wg                     sync.WaitGroup
}

func certsStartLoad(t *testing.T, c *framework.Cluster, lbAddr, webhookName, ns string) *certsLoad {
	t.Helper()
	l := &certsLoad{stopCh: make(chan struct{})}
	ctx := context.Background()
	fail := func(format string, args ...any) {
		l.failed.Add(1)
		l.mu.Lock()
		if len(l.errs) < 10 {
			l.errs = append(l.errs, fmt.Sprintf(format, args...))
		}
		l.mu.Unlock()
	}
	for w := 0; w < 4; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stopCh:
					return
				default:
				}
				var err error
				if (w+i)%2 == 0 {
					pc := &v1alpha1.PluginConfig{}
					if err = c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-cors"}, pc); err == nil {
						if pc.Labels == nil {
							pc.Labels = map[string]string{}
						}
						pc.Labels["load"] = fmt.Sprint(i)
						err = c.Client.Update(ctx, pc, client.DryRunAll)
						if apierrors.IsConflict(err) {
							continue
						}
					}
				} else {
					pod := &corev1.Pod{
						ObjectMeta: metav1.ObjectMeta{GenerateName: "load-", Namespace: ns, Labels: map[string]string{"app": "web"}},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/web:1", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
					}
					if err = c.Client.Create(ctx, pod, client.DryRunAll); err == nil && len(pod.Spec.InitContainers) == 0 {
						err = fmt.Errorf("pod %s was not injected", pod.Name)
					}
				}
				if err != nil {
					fail("%s: %v", time.Now().Format("15:04:05.000"), err)
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			select {
			case <-l.stopCh:
				return
			case <-time.After(20 * time.Millisecond):
			}
			vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := c.Client.Get(ctx, client.ObjectKey{Name: webhookName}, vwc); err != nil {
				fail("reading caBundle: %v", err)
				continue
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(vwc.Webhooks[0].ClientConfig.CABundle)
			conn, err := tls.Dial("tcp", lbAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
			if err != nil {
				fail("%s: handshake with the published caBundle: %v", time.Now().Format("15:04:05.000"), err)
				continue
			}
			conn.Close()
			l.handshakes.Add(1)
		}
	}()
	t.Cleanup(func() { l.stop() })
	return l
}

// waitFor waits until n more requests have succeeded.
func (l *certsLoad) waitFor(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	framework.Eventually(t, 30*time.Second, 20*time.Millisecond, func() (bool, string) {
		return l.ok.Load() >= target, fmt.Sprintf("%d requests succeeded, waiting for %d (%d failed)", l.ok.Load(), target, l.failed.Load())
	})
}

func (l *certsLoad) stop() (ok, failed, handshakes int64) {
	select {
	case <-l.stopCh:
	default:
		close(l.stopCh)
	}
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.handshakes.Load()
}

func (l *certsLoad) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}
