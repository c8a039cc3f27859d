package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// mainModule is the module whose binaries the images must hold.
const mainModule = "github.com/cors-webhook/cors-webhook"

func remoteOpts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

func keygen(dir string) error {
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(os.Getenv("COSIGN_PASSWORD")), nil })
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cosign.key"), keys.PrivateBytes, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "cosign.pub"), keys.PublicBytes, 0o644)
}

// resolve returns the digest a tag points at.
func resolve(ctx context.Context, ref string) (name.Tag, name.Digest, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, name.Digest{}, err
	}
	desc, err := remote.Head(tag, remoteOpts(ctx)...)
	if err != nil {
		return name.Tag{}, name.Digest{}, fmt.Errorf("%s: %w", ref, err)
	}
	return tag, tag.Context().Digest(desc.Digest.String()), nil
}

// platformImage is one image of an index.
type platformImage struct {
	digest   name.Digest
	platform v1.Platform
}

// platformImages returns the images of the index d (attestation manifests and other
// platform-less entries left out).
func platformImages(ctx context.Context, d name.Digest) ([]platformImage, error) {
	idx, err := remote.Index(d, remoteOpts(ctx)...)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []platformImage
	for _, desc := range m.Manifests {
		if desc.Platform == nil || desc.Platform.OS == "unknown" {
			continue
		}
		out = append(out, platformImage{d.Context().Digest(desc.Digest.String()), *desc.Platform})
	}
	return out, nil
}

// eachImageSBOM calls f with every platform image of a's images and the SBOM made from it.
func eachImageSBOM(ctx context.Context, a artifacts, f func(pi platformImage, bom *CycloneDX) error) error {
	for _, ref := range a.imageRefs() {
		tag, d, err := resolve(ctx, ref)
		if err != nil {
			return err
		}
		platforms, err := platformImages(ctx, d)
		if err != nil {
			return err
		}
		for _, pi := range platforms {
			img, err := remote.Image(pi.digest, remoteOpts(ctx)...)
			if err != nil {
				return err
			}
			bom, err := imageSBOM(img, tag.Context().Name(), tag.TagStr())
			if err != nil {
				return err
			}
			if err := f(pi, bom); err != nil {
				return err
			}
		}
	}
	return nil
}

func sign(ctx context.Context, out io.Writer, a artifacts, keyFile string) error {
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	sv, err := cosign.LoadPrivateKey(pem, []byte(os.Getenv("COSIGN_PASSWORD")), nil)
	if err != nil {
		return fmt.Errorf("loading %s: %w", keyFile, err)
	}
	opts := []ociremote.Option{ociremote.WithRemoteOptions(remoteOpts(ctx)...)}
	for _, ref := range append(a.imageRefs(), a.chartRef()) {
		tag, d, err := resolve(ctx, ref)
		if err != nil {
			return err
		}
		if err := signDigest(ctx, sv, tag, d, opts); err != nil {
			return fmt.Errorf("signing %s: %w", ref, err)
		}
		fmt.Fprintf(out, "signed %s (%s)\n", ref, d.DigestStr())
	}
	return eachImageSBOM(ctx, a, func(pi platformImage, bom *CycloneDX) error {
		if err := attest(ctx, sv, pi.digest, bom, opts); err != nil {
			return fmt.Errorf("attaching the SBOM of %s: %w", pi.digest, err)
		}
		fmt.Fprintf(out, "attached a signed CycloneDX SBOM (%d components) to %s\n", len(bom.Components), pi.digest)
		return nil
	})
}

// signDigest attaches a cosign signature of d, claiming the identity tag, as `cosign sign
// --key --tlog-upload=false` does.
func signDigest(ctx context.Context, sv signature.SignerVerifier, tag name.Tag, d name.Digest, opts []ociremote.Option) error {
	pl, err := payload.Cosign{Image: d, ClaimedIdentity: tag.String()}.MarshalJSON()
	if err != nil {
		return err
	}
	raw, err := sv.SignMessage(bytes.NewReader(pl))
	if err != nil {
		return err
	}
	sig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return err
	}
	se, err := ociremote.SignedEntity(d, opts...)
	if err != nil {
		return err
	}
	se, err = mutate.AttachSignatureToEntity(se, sig)
	if err != nil {
		return err
	}
	return ociremote.WriteSignatures(d.Repository, se, opts...)
}

// statement is an in-toto statement (v0.1, what cosign writes).
type statement struct {
	Type          string    `json:"_type"`
	PredicateType string    `json:"predicateType"`
	Subject       []subject `json:"subject"`
	Predicate     any       `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// attest attaches bom to d as a DSSE-signed in-toto attestation, as `cosign attest --type
// cyclonedx --key --tlog-upload=false` does; an attestation of the same type is replaced.
func attest(ctx context.Context, sv signature.SignerVerifier, d name.Digest, bom *CycloneDX, opts []ociremote.Option) error {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return err
	}
	st, err := json.Marshal(statement{Type: "https://in-toto.io/Statement/v0.1", PredicateType: PredicateCycloneDX,
		Subject: []subject{{Name: d.Context().Name(), Digest: map[string]string{h.Algorithm: h.Hex}}}, Predicate: bom})
	if err != nil {
		return err
	}
	env, err := dsse.WrapSigner(sv, types.IntotoPayloadType).SignMessage(bytes.NewReader(st))
	if err != nil {
		return err
	}
	att, err := static.NewAttestation(env, static.WithLayerMediaType(types.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": PredicateCycloneDX}))
	if err != nil {
		return err
	}
	se, err := mutate.AttachAttestationToEntity(ociremote.SignedUnknown(d, opts...), att)
	if err != nil {
		return err
	}
	return ociremote.WriteAttestations(d.Repository, se, opts...)
}

func verify(ctx context.Context, out io.Writer, a artifacts, keyFile string) error {
	pub, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	pk, err := cosign.PemToECDSAKey(pub)
	if err != nil {
		return fmt.Errorf("%s: %w", keyFile, err)
	}
	verifier, err := signature.LoadVerifier(pk, crypto.SHA256)
	if err != nil {
		return err
	}
	co := &cosign.CheckOpts{
		SigVerifier: verifier, IgnoreTlog: true, IgnoreSCT: true, Offline: true,
		RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(remoteOpts(ctx)...)},
	}
	var errs []error
	for _, ref := range append(a.imageRefs(), a.chartRef()) {
		tag, d, err := resolve(ctx, ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sco := *co
		sco.ClaimVerifier = cosign.SimpleClaimVerifier
		sigs, _, err := cosign.VerifyImageSignatures(ctx, d, &sco)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: signature: %w", ref, err))
			continue
		}
		if err := claimsTag(sigs, tag); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			continue
		}
		fmt.Fprintf(out, "verified: %s (%s) is signed\n", ref, d.DigestStr())
	}
	for _, ref := range a.imageRefs() {
		_, d, err := resolve(ctx, ref)
		if err != nil {
			continue // reported above
		}
		platforms, err := platformImages(ctx, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, pi := range platforms {
			pd := pi.digest
			aco := *co
			aco.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
			atts, _, err := cosign.VerifyImageAttestations(ctx, pd, &aco)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: SBOM attestation: %w", pd, err))
				continue
			}
			bom, err := sbomOf(atts)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", pd, err))
				continue
			}
			fmt.Fprintf(out, "verified: %s carries a signed CycloneDX SBOM of %d components\n", pd, len(bom.Components))
		}
	}
	return errors.Join(errs...)
}

// claimsTag checks that one of the verified signatures names tag as the signed image's
// identity: a signature of the same digest made for another name does not count.
func claimsTag(sigs []oci.Signature, tag name.Tag) error {
	for _, sig := range sigs {
		pl, err := sig.Payload()
		if err != nil {
			continue
		}
		var c payload.Cosign
		if json.Unmarshal(pl, &c) == nil && c.ClaimedIdentity == tag.String() {
			return nil
		}
	}
	return fmt.Errorf("no valid signature claims the identity %s", tag)
}

// sbomOf returns the CycloneDX SBOM of the verified attestations, checked to describe an image
// built from this module.
func sbomOf(atts []oci.Signature) (*CycloneDX, error) {
	for _, att := range atts {
		pl, err := att.Payload()
		if err != nil {
			return nil, err
		}
		var env struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
		}
		if err := json.Unmarshal(pl, &env); err != nil {
			return nil, err
		}
		raw, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			return nil, err
		}
		var st struct {
			PredicateType string    `json:"predicateType"`
			Predicate     CycloneDX `json:"predicate"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, err
		}
		if st.PredicateType != PredicateCycloneDX {
			continue
		}
		bom := &st.Predicate
		if bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.Type != "container" {
			return nil, fmt.Errorf("the SBOM is not a CycloneDX BOM of a container image")
		}
		for _, c := range bom.Components {
			if c.Type == "application" && strings.HasPrefix(c.Name, mainModule+"/") {
				return bom, nil
			}
		}
		return nil, fmt.Errorf("the SBOM lists no binary of %s", mainModule)
	}
	return nil, fmt.Errorf("no CycloneDX SBOM among %d verified attestations", len(atts))
}

// writeSBOMs writes the SBOM of every platform image to dir, named by image and platform, for a
// signer that attests them itself (cosign attest in the release workflow).
func writeSBOMs(ctx context.Context, out io.Writer, a artifacts, dir string) error {
	return eachImageSBOM(ctx, a, func(pi platformImage, bom *CycloneDX) error {
		b, err := json.MarshalIndent(bom, "", "  ")
		if err != nil {
			return err
		}
		file := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.cdx.json", filepath.Base(pi.digest.RepositoryStr()), pi.platform.OS, pi.platform.Architecture))
		if err := os.WriteFile(file, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %s\n", file, pi.digest)
		return nil
	})
}
