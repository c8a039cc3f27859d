// Package certs provides the webhook server's serving certificate, in one of two modes chosen by
// `serve --cert-mode`:
//
//   - cert-manager (the default): tls.crt and tls.key are files in --cert-dir, normally
//     cert-manager's Secret mounted there, and controller-runtime's certwatcher reloads them when
//     the Secret is renewed. cert-manager's CA injector fills the caBundle of the webhook
//     configurations (annotation cert-manager.io/inject-ca-from). Nothing in this package runs.
//   - self-signed (no cert-manager in the cluster): a built-in CA. The leader keeps one Secret
//     holding the CA and a serving certificate for the webhook Service's DNS names: it creates the
//     material when the Secret is missing or empty, renews the serving certificate when a third of
//     its lifetime is left (the CA likewise, in two stages so that the API server trusts the new
//     CA before any replica serves a certificate signed by it), and writes the CA bundle into the
//     caBundle of the named Mutating- and ValidatingWebhookConfigurations. Every replica watches
//     that one Secret and serves from it through a tls.Config certificate callback, so a rotation
//     takes effect without a restart and a replica started later serves the same certificate.
//
// Both modes serve TLS 1.2 at least.
//
// The PKI itself (plan.go) is a pure function from the Secret's data and the clock to the next
// data, so rotation is tested without a cluster; selfsigned.go wires it to the manager.
package certs
