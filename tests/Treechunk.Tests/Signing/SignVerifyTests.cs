using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Signing;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Signing;

/// <summary>
/// oci generate-key, sign and verify against a real docker-registry, with the peers reading what
/// we wrote: skopeo finds our signature where cosign keeps it and hands back our exact payload
/// and signature, openssl verifies that signature, and we verify what skopeo writes back.
/// </summary>
public class SignVerifyTests(SignatureFixture fx) : IClassFixture<SignatureFixture>
{
    private static JsonNode Only(JsonNode verify) => Assert.Single(verify["signatures"]!.AsArray().Where(s => (bool)s!["ok"]!))!;

    [Fact]
    public void Generate_key_writes_cosigns_files_and_refuses_to_overwrite()
    {
        var key = File.ReadAllText(fx.Key);
        Assert.StartsWith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n", key);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(fx.Key));
        // openssl reads the public key as a P-256 key.
        Assert.Contains("prime256v1", Proc.Check(Tools.Require("openssl"), "pkey", "-pubin", "-in", fx.Pub, "-noout", "-text"));
        var before = File.ReadAllText(fx.Key);
        Assert.Contains("give --force", fx.Fails(2, "oci", "generate-key", "--output-key-prefix", fx.Dir["ours"]));
        Assert.Equal(before, File.ReadAllText(fx.Key));
        Assert.Empty(Directory.GetFiles(fx.Dir.Path, ".tmp-*"));
    }

    [Fact]
    public void Sign_and_verify_in_a_registry_appends_signatures()
    {
        var image = fx.Push(fx.V1, "rt/app:v1");
        var signed = fx.Json("oci", "sign", "--key", fx.Key, image);
        Assert.Equal(fx.V1.ManifestDigest, (string)signed["manifest_digest"]!);
        Assert.Equal($"{fx.Registry.Host}/rt/app", (string)signed["identity"]!);
        Assert.Equal(SignatureFixture.SigTag(fx.V1.ManifestDigest), (string)signed["stored_at"]!);
        Assert.Equal(1, (int)signed["signatures"]!);

        var verify = fx.Json("oci", "verify", "--key", fx.Pub, image);
        Assert.True((bool)verify["verified"]!);
        var ok = Only(verify);
        Assert.Equal(fx.Pub, (string)ok["key"]!);
        Assert.Equal($"{fx.Registry.Host}/rt/app", (string)ok["docker_reference"]!);
        Assert.Equal($"tag {SignatureFixture.SigTag(fx.V1.ManifestDigest)}", (string)ok["origin"]!);
        // The signature manifest names the payload the report names.
        var (manifest, payload, _) = fx.ReadSignature("rt/app", fx.V1.ManifestDigest);
        Assert.Equal(SignatureFixture.Sha256(payload), (string)ok["payload_digest"]!);
        var claims = JsonNode.Parse(payload)!;
        Assert.Equal(fx.V1.ManifestDigest, (string)claims["critical"]!["image"]!["docker-manifest-digest"]!);
        Assert.Equal($"{fx.Registry.Host}/rt/app", (string)claims["critical"]!["identity"]!["docker-reference"]!);
        Assert.Equal("cosign container image signature", (string)claims["critical"]!["type"]!);
        Assert.Single(manifest["layers"]!.AsArray());

        // A second signer adds a layer; the first signature stays.
        var env = new Dictionary<string, string>(fx.Env) { ["TREECHUNK_PASSWORD"] = "someone else" };
        var again = RegistryTestsJson(env, "oci", "sign", "--key", fx.OtherKey, image);
        Assert.Equal(2, (int)again["signatures"]!);
        Assert.Equal(2, JsonNode.Parse(fx.GetManifest("rt/app", SignatureFixture.SigTag(fx.V1.ManifestDigest)))!["layers"]!.AsArray().Count);
        var byOther = fx.Json("oci", "verify", "--key", fx.OtherPub, image);
        Assert.Equal(fx.OtherPub, (string)Only(byOther)["key"]!);
        Assert.Equal(2, byOther["signatures"]!.AsArray().Count);
        var text = fx.Run("oci", "verify", "--key", fx.Pub, image);
        Assert.Equal(0, text.ExitCode);
        Assert.Contains($"verified: {fx.V1.ManifestDigest} signed by {fx.Pub} for {fx.Registry.Host}/rt/app", text.Stdout);
    }

    private static JsonNode RegistryTestsJson(Dictionary<string, string> env, params string[] args) =>
        Treechunk.Tests.Registry.RegistryClientTests.Json(env, args);

    [Fact]
    public void Skopeo_reads_our_signature_openssl_verifies_it_and_we_verify_what_skopeo_writes()
    {
        var image = fx.Push(fx.V1, "peer/app:v1");
        fx.Json("oci", "sign", "--key", fx.Key, "--annotation", "build=42", image);
        var (_, payload, signature) = fx.ReadSignature("peer/app", fx.V1.ManifestDigest);

        // openssl verifies the signature over the exact payload bytes with our .pub.
        File.WriteAllBytes(fx.Dir["peer.payload"], payload);
        File.WriteAllBytes(fx.Dir["peer.sig"], signature);
        var openssl = Tools.Require("openssl");
        Assert.Contains("Verified OK", Proc.Check(openssl, "dgst", "-sha256", "-verify", fx.Pub, "-signature", fx.Dir["peer.sig"], fx.Dir["peer.payload"]));
        // ... and not with the other key, nor over a payload one byte different.
        var wrongKey = Proc.Run(openssl, ["dgst", "-sha256", "-verify", fx.OtherPub, "-signature", fx.Dir["peer.sig"], fx.Dir["peer.payload"]]);
        Assert.NotEqual(0, wrongKey.ExitCode);
        Assert.Contains("Verification failure", wrongKey.Stdout + wrongKey.Stderr);

        // skopeo, reading sigstore attachments, finds the signature at the tag cosign uses and
        // hands back our payload bytes and signature annotation unchanged.
        var dir = fx.Dir["peer-dir"];
        var copied = fx.SkopeoCheck("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--policy", fx.Dir["any.json"], "--registries.d", fx.Dir["registries.d"], image, $"dir:{dir}");
        Assert.Contains("Storing signatures", copied);
        var stored = File.ReadAllBytes(Path.Join(dir, "signature-1"));
        Assert.False(File.Exists(Path.Join(dir, "signature-2")));
        var prefix = "\0sigstore-json\n"u8.ToArray();
        Assert.Equal(prefix, stored[..prefix.Length]);
        var sig = JsonNode.Parse(stored.AsSpan(prefix.Length))!;
        Assert.Equal("application/vnd.dev.cosign.simplesigning.v1+json", (string)sig["mimeType"]!);
        Assert.Equal(payload, Convert.FromBase64String((string)sig["payload"]!));
        Assert.Equal(Convert.ToBase64String(signature), (string)sig["annotations"]!["dev.cosignproject.cosign/signature"]!);
        // The annotation is in the signed payload's optional section.
        Assert.Equal("42", (string)JsonNode.Parse(payload)!["optional"]!["build"]!);

        // skopeo copies image and signature to another repository, writing the signature
        // manifest itself; treechunk verifies that against the repository the payload names.
        fx.SkopeoCheck("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--policy", fx.Dir["any.json"], "--registries.d", fx.Dir["registries.d"], image, fx.Ref("peer/copied:v1"));
        var skopeoWritten = JsonNode.Parse(fx.GetManifest("peer/copied", SignatureFixture.SigTag(fx.V1.ManifestDigest)))!;
        Assert.Equal("application/vnd.dev.cosign.simplesigning.v1+json", (string)skopeoWritten["layers"]![0]!["mediaType"]!);
        var verify = fx.Json("oci", "verify", "--key", fx.Pub, "--identity", $"{fx.Registry.Host}/peer/app", fx.Ref("peer/copied:v1"));
        Assert.Equal("42", (string)Only(verify)["optional"]!["build"]!);
        // Without --identity the repository is the copy's, which the payload does not name.
        Assert.Contains($"signed for repository {fx.Registry.Host}/peer/app, not {fx.Registry.Host}/peer/copied",
            fx.Fails(1, "oci", "verify", "--key", fx.Pub, fx.Ref("peer/copied:v1")));
    }

    [Fact]
    public void Skopeo_sigstore_signing_and_policy_checks_are_disabled_in_Debians_build()
    {
        // A sigstoreSigned policy with our public key would be the peer that proves skopeo (and
        // podman: the same containers/image, the same Debian patch) accepts our signatures.
        // Debian's build refuses to evaluate it at all, for a correctly signed image. When this
        // fails, the policy works and the acceptance test can be written against it.
        var image = fx.Push(fx.V1, "policy/app:v1");
        fx.Json("oci", "sign", "--key", fx.Key, image);
        File.WriteAllText(fx.Dir["sigstore.json"],
            $"{{\"default\":[{{\"type\":\"sigstoreSigned\",\"keyPath\":\"{fx.Pub}\",\"signedIdentity\":{{\"type\":\"matchRepository\"}}}}]}}");
        var policy = fx.Skopeo("copy", "--src-tls-verify=false", "--policy", fx.Dir["sigstore.json"], "--registries.d", fx.Dir["registries.d"],
            image, $"dir:{fx.Dir["policy-dir"]}");
        Assert.NotEqual(0, policy.ExitCode);
        Assert.Contains("Source image rejected: Debian-local change: sigstore disabled", policy.Stderr);

        // skopeo --sign-by-sigstore-private-key would be the peer that proves our key file opens
        // elsewhere; Debian builds containers/image without sigstore, so it says so. This test
        // pins that down: when it fails, skopeo can sign, and the acceptance test that signs
        // with our key through skopeo and verifies with treechunk can be written against it.
        File.WriteAllText(fx.Dir["pw"], SignatureFixture.Password + "\n");
        var r = fx.Skopeo("copy", "--dest-tls-verify=false", "--policy", fx.Dir["any.json"], "--registries.d", fx.Dir["registries.d"],
            "--sign-by-sigstore-private-key", fx.Key, "--sign-passphrase-file", fx.Dir["pw"], fx.V2.OciRef, fx.Ref("skopeo/signed:v1"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("creating signature: Debian-local change: sigstore disabled", r.Stderr);
    }

    [Fact]
    public void Bad_inputs_each_give_one_clear_line()
    {
        var image = fx.Push(fx.V1, "bad/app:v1");
        fx.Push(fx.V2, "bad/app:v2");
        var tag = SignatureFixture.SigTag(fx.V1.ManifestDigest);

        // 1. Wrong password.
        Assert.Contains("wrong password", fx.Fails(new Dictionary<string, string> { ["TREECHUNK_PASSWORD"] = "not it" }, 2, "oci", "sign", "--key", fx.Key, image));
        Assert.False(fx.HasManifest("bad/app", tag));

        // 2. A corrupt key file: the PEM body is not the JSON cosign writes, or the file is cut short.
        File.WriteAllText(fx.Dir["corrupt.key"], PemEncoding.WriteString("ENCRYPTED SIGSTORE PRIVATE KEY", "{\"kdf\":"u8.ToArray()));
        Assert.Contains("corrupt encrypted key file", fx.Fails(2, "oci", "sign", "--key", fx.Dir["corrupt.key"], image));
        File.WriteAllText(fx.Dir["cut.key"], File.ReadAllText(fx.Key)[..120]);
        Assert.Contains("is not a PEM key file", fx.Fails(2, "oci", "sign", "--key", fx.Dir["cut.key"], image));
        var flipped = File.ReadAllText(fx.Key);
        PemEncoding.TryFind(flipped, out var f);
        var body = JsonNode.Parse(Convert.FromBase64String(flipped[f.Base64Data]))!;
        var ct = Convert.FromBase64String((string)body["ciphertext"]!);
        ct[^1] ^= 1;
        body["ciphertext"] = Convert.ToBase64String(ct);
        File.WriteAllText(fx.Dir["flipped.key"], PemEncoding.WriteString("ENCRYPTED SIGSTORE PRIVATE KEY", Encoding.UTF8.GetBytes(body.ToJsonString())));
        Assert.Contains("decryption failed", fx.Fails(2, "oci", "sign", "--key", fx.Dir["flipped.key"], image));
        Assert.False(fx.HasManifest("bad/app", tag));

        fx.Json("oci", "sign", "--key", fx.Key, image);

        // 3. A public key in the wrong format: an RSA key, a private key, a certificate.
        var openssl = Tools.Require("openssl");
        Proc.Check(openssl, "genrsa", "-out", fx.Dir["rsa.pem"], "2048");
        Proc.Check(openssl, "rsa", "-in", fx.Dir["rsa.pem"], "-pubout", "-out", fx.Dir["rsa.pub"]);
        Assert.Contains("not an EC public key", fx.Fails(2, "oci", "verify", "--key", fx.Dir["rsa.pub"], image));
        Assert.Contains("is a private key; verifying needs the public key", fx.Fails(2, "oci", "verify", "--key", fx.Key, image));
        Proc.Check(openssl, "req", "-x509", "-new", "-key", fx.Dir["rsa.pem"], "-subj", "/CN=x", "-days", "1", "-out", fx.Dir["rsa.crt"]);
        Assert.Contains("is not a public key (expected PEM PUBLIC KEY)", fx.Fails(2, "oci", "verify", "--key", fx.Dir["rsa.crt"], image));

        var (_, payload, signature) = fx.ReadSignature("bad/app", fx.V1.ManifestDigest);
        using var key = SigningKeys.LoadPrivateKey(File.ReadAllText(fx.Key), "ours.key", () => Encoding.UTF8.GetBytes(SignatureFixture.Password));
        byte[] Sign(byte[] p) => key.SignData(p, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);

        // 4. A tampered payload: the signature stays, a byte of what it covers changes.
        var tampered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(payload).Replace("\"optional\":null", "\"optional\":{\"x\":\"y\"}"));
        Assert.NotEqual(payload, tampered);
        fx.PlantSignature("bad/app", tag, tampered, signature);
        Assert.Contains($"the signature does not verify with {fx.Pub}", fx.Fails(1, "oci", "verify", "--key", fx.Pub, image));

        // 5. A payload for another digest (rightly signed, but for v2's manifest).
        fx.PlantSignature("bad/app", tag, SimpleSigning.Create(fx.V2.ManifestDigest, $"{fx.Registry.Host}/bad/app", null), Sign(SimpleSigning.Create(fx.V2.ManifestDigest, $"{fx.Registry.Host}/bad/app", null)));
        Assert.Contains($"signed for manifest {fx.V2.ManifestDigest}, not this image's {fx.V1.ManifestDigest}", fx.Fails(1, "oci", "verify", "--key", fx.Pub, image));

        // 6. A payload for another repository: signed by oci sign itself, naming another --identity.
        var elsewhere = fx.Push(fx.V1, "bad/id:v1");
        fx.Json("oci", "sign", "--key", fx.Key, "--identity", $"{fx.Registry.Host}/elsewhere/app", elsewhere);
        Assert.Contains($"signed for repository {fx.Registry.Host}/elsewhere/app, not {fx.Registry.Host}/bad/id", fx.Fails(1, "oci", "verify", "--key", fx.Pub, elsewhere));

        // And an image with no signature at all.
        Assert.Contains($"no signature found for {fx.V2.ManifestDigest}", fx.Fails(1, "oci", "verify", "--key", fx.Pub, fx.Ref("bad/app:v2")));
        // A signature by another key.
        Assert.Contains($"does not verify with {fx.OtherPub}", fx.Fails(1, "oci", "verify", "--key", fx.OtherPub, image));
    }
}
