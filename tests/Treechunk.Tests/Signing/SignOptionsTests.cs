using System.Text.Json.Nodes;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Signing;

/// <summary>
/// Signatures kept in a layout and carried to a registry by oci push and oci copy; --cert,
/// --annotation and --referrers; a tag moved after signing; verify-layers and verify-content on
/// registry images, a corrupted blob included.
/// </summary>
public class SignOptionsTests(SignatureFixture fx) : IClassFixture<SignatureFixture>
{
    private static JsonNode Only(JsonNode verify) => Assert.Single(verify["signatures"]!.AsArray().Where(s => (bool)s!["ok"]!))!;

    private string CopyLayout(string image, string name)
    {
        var layout = fx.Dir[name];
        TreechunkCli.Check("oci", "copy", image, $"oci:{layout}:v1");
        return layout;
    }

    [Fact]
    public void A_layouts_signatures_go_along_with_oci_push_and_oci_copy()
    {
        var layout = CopyLayout(fx.V1.OciRef, "signed-layout");
        var identity = $"{fx.Registry.Host}/lay/app";
        var tagged = fx.Json("oci", "sign", "--key", fx.Key, "--identity", identity, $"oci:{layout}:v1");
        Assert.Equal(SignatureFixture.SigTag(fx.V1.ManifestDigest), (string)tagged["stored_at"]!);
        var referrer = fx.Json("oci", "sign", "--key", fx.Key, "--referrers", "--identity", identity, $"oci:{layout}:v1");
        Assert.True((bool)referrer["referrers_tag_fallback"]!);
        // In the layout: verified, the repository shown but not checked (a layout has none) unless --identity.
        var local = fx.Json("oci", "verify", "--key", fx.Pub, $"oci:{layout}:v1");
        Assert.Equal(2, local["signatures"]!.AsArray().Count(s => (bool)s!["ok"]!));
        Assert.Contains("signed for repository", fx.Fails(1, "oci", "verify", "--key", fx.Pub, "--identity", $"{fx.Registry.Host}/not/this", $"oci:{layout}:v1"));
        // The layout's default image is still the image, not a signature.
        Assert.Equal(fx.V1.ManifestDigest, (string)JsonNode.Parse(TreechunkCli.Check("oci", "inspect", layout, "--json"))!["manifest_digest"]!);

        var push = fx.Json("oci", "push", $"oci:{layout}:v1", fx.Ref("lay/app:v1"));
        Assert.Equal(
            new[] { SignatureFixture.SigTag(fx.V1.ManifestDigest), "sha256-" + fx.V1.ManifestDigest[7..] },
            push["signature_tags"]!.AsArray().Select(t => (string)t!).ToArray());
        var tags = fx.Json("oci", "tags", fx.Ref("lay/app")).AsArray().Select(t => (string)t!).ToList();
        Assert.Contains(SignatureFixture.SigTag(fx.V1.ManifestDigest), tags);
        Assert.Contains("sha256-" + fx.V1.ManifestDigest[7..], tags);
        var verify = fx.Json("oci", "verify", "--key", fx.Pub, fx.Ref("lay/app:v1"));
        var ok = verify["signatures"]!.AsArray().Where(s => (bool)s!["ok"]!).Select(s => (string)s!["origin"]!).ToList();
        Assert.Equal(2, ok.Count);
        Assert.Contains($"tag {SignatureFixture.SigTag(fx.V1.ManifestDigest)}", ok);
        Assert.Contains(ok, o => o.StartsWith("referrer sha256:"));

        // skopeo, reading sigstore attachments from the registry, gets the signature the layout held.
        var dir = fx.Dir["lay-dir"];
        fx.SkopeoCheck("copy", "--src-tls-verify=false", "--policy", fx.Dir["any.json"], "--registries.d", fx.Dir["registries.d"], fx.Ref("lay/app:v1"), $"dir:{dir}");
        var stored = File.ReadAllBytes(Path.Join(dir, "signature-1"));
        var sig = JsonNode.Parse(stored.AsSpan("\0sigstore-json\n".Length))!;
        var payload = JsonNode.Parse(Convert.FromBase64String((string)sig["payload"]!))!;
        Assert.Equal(identity, (string)payload["critical"]!["identity"]!["docker-reference"]!);
        Assert.Equal(fx.V1.ManifestDigest, (string)payload["critical"]!["image"]!["docker-manifest-digest"]!);

        // oci copy to an archive carries them too, and the archive verifies.
        var archive = fx.Dir["signed.tar"];
        var copy = fx.Json("oci", "copy", $"oci:{layout}:v1", $"oci-archive:{archive}:v1");
        Assert.Equal(2, copy["signature_tags"]!.AsArray().Count);
        Assert.Equal(2, fx.Json("oci", "verify", "--key", fx.Pub, "--identity", identity, $"oci-archive:{archive}:v1")["signatures"]!.AsArray().Count(s => (bool)s!["ok"]!));
        // A layout whose image is not signed carries nothing.
        var plain = CopyLayout(fx.V2.OciRef, "plain-layout");
        Assert.Empty(fx.Json("oci", "push", $"oci:{plain}:v1", fx.Ref("lay/plain:v1"))["signature_tags"]!.AsArray());
    }

    [Fact]
    public void Cert_must_match_the_key_and_is_attached()
    {
        var openssl = Tools.Require("openssl");
        Proc.Check(openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", fx.Dir["signer.pem"]);
        Proc.Check(openssl, "ec", "-in", fx.Dir["signer.pem"], "-pubout", "-out", fx.Dir["signer.pub"]);
        Proc.Check(openssl, "req", "-x509", "-new", "-key", fx.Dir["signer.pem"], "-subj", "/CN=treechunk signer", "-days", "2", "-out", fx.Dir["signer.crt"]);
        Proc.Check(openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", fx.Dir["stranger.pem"]);
        Proc.Check(openssl, "req", "-x509", "-new", "-key", fx.Dir["stranger.pem"], "-subj", "/CN=stranger", "-days", "2", "-out", fx.Dir["stranger.crt"]);
        var image = fx.Push(fx.V1, "cert/app:v1");

        Assert.Contains("--cert: the certificate (CN=stranger) is for another key than --key",
            fx.Fails(2, "oci", "sign", "--key", fx.Dir["signer.pem"], "--cert", fx.Dir["stranger.crt"], image));
        Assert.Contains("--cert is not a PEM certificate", fx.Fails(2, "oci", "sign", "--key", fx.Dir["signer.pem"], "--cert", fx.Dir["signer.pub"], image));
        Assert.False(fx.HasManifest("cert/app", SignatureFixture.SigTag(fx.V1.ManifestDigest)));

        fx.Json("oci", "sign", "--key", fx.Dir["signer.pem"], "--cert", fx.Dir["signer.crt"], image);
        var (manifest, _, _) = fx.ReadSignature("cert/app", fx.V1.ManifestDigest);
        var attached = (string)manifest["layers"]![0]!["annotations"]!["dev.sigstore.cosign/certificate"]!;
        File.WriteAllText(fx.Dir["attached.crt"], attached);
        // openssl reads what is attached as the certificate given.
        Assert.Equal(Proc.Check(openssl, "x509", "-in", fx.Dir["signer.crt"], "-noout", "-fingerprint", "-sha256"),
                     Proc.Check(openssl, "x509", "-in", fx.Dir["attached.crt"], "-noout", "-fingerprint", "-sha256"));
        Assert.True((bool)fx.Json("oci", "verify", "--key", fx.Dir["signer.pub"], image)["verified"]!);
    }

    [Fact]
    public void Annotations_are_signed_claims_in_the_payload()
    {
        var image = fx.Push(fx.V1, "ann/app:v1");
        fx.Json("oci", "sign", "--key", fx.Key, "--annotation", "build=42", "-a", "commit=abc123", image);
        var (_, payload, _) = fx.ReadSignature("ann/app", fx.V1.ManifestDigest);
        var optional = JsonNode.Parse(payload)!["optional"]!.AsObject();
        Assert.Equal("42", (string)optional["build"]!);
        Assert.Equal("abc123", (string)optional["commit"]!);
        var verified = Only(fx.Json("oci", "verify", "--key", fx.Pub, image));
        Assert.Equal("42", (string)verified["optional"]!["build"]!);
        Assert.Equal("abc123", (string)verified["optional"]!["commit"]!);
        Assert.Contains("--annotation", fx.Fails(2, "oci", "sign", "--key", fx.Key, "--annotation", "no-equals-sign", image));
    }

    [Fact]
    public void Referrers_fall_back_to_the_referrers_tag_on_a_registry_without_the_api()
    {
        var image = fx.Push(fx.V1, "ref/app:v1");
        var signed = fx.Json("oci", "sign", "--key", fx.Key, "--referrers", image);
        Assert.True((bool)signed["referrer"]!);
        Assert.True((bool)signed["referrers_tag_fallback"]!);
        var referrer = (string)signed["signature_manifest"]!;
        // distribution 2.8 has no referrers API ...
        Assert.Contains(fx.Registry.Requests, r => r.Path == $"/v2/ref/app/referrers/{fx.V1.ManifestDigest}" && r.Status == 404);
        // ... so the index at tag sha256-HEX lists the referrer, whose subject is the image.
        var index = JsonNode.Parse(fx.GetManifest("ref/app", "sha256-" + fx.V1.ManifestDigest[7..]))!;
        Assert.Equal("application/vnd.oci.image.index.v1+json", (string)index["mediaType"]!);
        var listed = Assert.Single(index["manifests"]!.AsArray())!;
        Assert.Equal(referrer, (string)listed["digest"]!);
        Assert.Equal("application/vnd.dev.cosign.artifact.sig.v1+json", (string)listed["artifactType"]!);
        var manifest = JsonNode.Parse(fx.GetManifest("ref/app", referrer))!;
        Assert.Equal(fx.V1.ManifestDigest, (string)manifest["subject"]!["digest"]!);
        Assert.Equal("application/vnd.dev.cosign.artifact.sig.v1+json", (string)manifest["artifactType"]!);
        Assert.False(fx.HasManifest("ref/app", SignatureFixture.SigTag(fx.V1.ManifestDigest)));

        var verify = fx.Json("oci", "verify", "--key", fx.Pub, image);
        Assert.Equal($"referrer {referrer}", (string)Only(verify)["origin"]!);
        // A second referrer signature is added to the index, not put in place of the first.
        var env = new Dictionary<string, string>(fx.Env) { ["TREECHUNK_PASSWORD"] = "someone else" };
        Treechunk.Tests.Registry.RegistryClientTests.Json(env, "oci", "sign", "--key", fx.OtherKey, "--referrers", image);
        Assert.Equal(2, JsonNode.Parse(fx.GetManifest("ref/app", "sha256-" + fx.V1.ManifestDigest[7..]))!["manifests"]!.AsArray().Count);
        Assert.Equal($"referrer {referrer}", (string)Only(fx.Json("oci", "verify", "--key", fx.Pub, image))["origin"]!);
    }

    [Fact]
    public void A_tag_moved_to_another_manifest_after_signing_does_not_verify()
    {
        var image = fx.Push(fx.V1, "moved/app:v1");
        fx.Json("oci", "sign", "--key", fx.Key, image);
        Assert.True((bool)fx.Json("oci", "verify", "--key", fx.Pub, image)["verified"]!);
        // The tag now names v2; v1's signature does not cover it.
        fx.Push(fx.V2, "moved/app:v1");
        Assert.Contains($"no signature found for {fx.V2.ManifestDigest}", fx.Fails(1, "oci", "verify", "--key", fx.Pub, image));
        // Even with v1's signature manifest copied to v2's signature tag.
        fx.PutManifest("moved/app", SignatureFixture.SigTag(fx.V2.ManifestDigest), fx.GetManifest("moved/app", SignatureFixture.SigTag(fx.V1.ManifestDigest)));
        Assert.Contains($"signed for manifest {fx.V1.ManifestDigest}, not this image's {fx.V2.ManifestDigest}", fx.Fails(1, "oci", "verify", "--key", fx.Pub, image));
        // By digest, v1 still verifies.
        Assert.True((bool)fx.Json("oci", "verify", "--key", fx.Pub, fx.Ref($"moved/app@{fx.V1.ManifestDigest}"))["verified"]!);
    }

    [Fact]
    public void Verify_layers_and_verify_content_work_on_registry_images()
    {
        // An image of its own: the registry keeps one copy of a blob for every repository.
        var own = TestImage.Write(fx.Dir["content-image"], 20_000, seed: 3);
        var image = fx.Push(own, "content/app:v1");
        var layers = fx.Run("oci", "verify-layers", image);
        Assert.True(layers.ExitCode == 0, layers.ToString());
        Assert.Contains($"ok: 3 blobs verified (1 layers) for {own.ManifestDigest}", layers.Stdout + layers.Stderr);
        var content = fx.Run("oci", "verify-content", "--expected-digest", own.ManifestDigest, image);
        Assert.True(content.ExitCode == 0, content.ToString());
        Assert.Contains(own.ManifestDigest, fx.Fails(1, "oci", "verify-content", "--expected-digest", fx.V2.ManifestDigest, image));

        // The registry's copy of the layer is damaged on disk (same size, one byte changed): verify-layers names it.
        var hex = own.LayerDigest[7..];
        var data = Path.Join(fx.Registry.StorageDir, "docker/registry/v2/blobs/sha256", hex[..2], hex, "data");
        Assert.True(File.Exists(data), data);
        var bytes = File.ReadAllBytes(data);
        bytes[bytes.Length / 2] ^= 0xff;
        File.WriteAllBytes(data, bytes);
        Assert.Contains(own.LayerDigest, fx.Fails(1, "oci", "verify-layers", image));
        // verify-content is about the manifest digest, which is still right.
        Assert.Equal(0, fx.Run("oci", "verify-content", "--expected-digest", own.ManifestDigest, image).ExitCode);
    }
}
