using System.CommandLine;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.IO;
using Treechunk.Signing;
using Treechunk.Transports;

namespace Treechunk.Cli.Commands;

/// <summary>oci generate-key, sign, verify: cosign-compatible key-based signatures (the library's Signing/).</summary>
public static class SigningCommands
{
    private const string ImageHelp = "Image: docker://HOST/REPO[:TAG|@DIGEST], oci:PATH[:TAG|@DIGEST], oci-archive:FILE[:TAG|@DIGEST], or a bare path";

    public static void AddTo(Command oci)
    {
        oci.Subcommands.Add(GenerateKey());
        oci.Subcommands.Add(Sign());
        oci.Subcommands.Add(Verify());
    }

    private static Command GenerateKey()
    {
        var cmd = new Command("generate-key", """
            Generate an ECDSA P-256 key pair as cosign writes them: PREFIX.key, the private key
            encrypted with a password (PEM ENCRYPTED SIGSTORE PRIVATE KEY: scrypt and NaCl
            secretbox over PKCS#8; mode 0600), and PREFIX.pub (PEM PUBLIC KEY). the files are
            cosign's format (skopeo's --sign-by-sigstore-private-key takes it too).

            The password comes from --password-stdin (the first line), else $TREECHUNK_PASSWORD,
            else $COSIGN_PASSWORD (either may be empty), else a prompt when on a terminal.
            Existing files are not replaced without --force.

            Examples:
              treechunk oci generate-key --output-key-prefix ./release
              echo "$PW" | treechunk oci generate-key --output-key-prefix ./ci --password-stdin
            """);
        var prefix = new Option<string>("--output-key-prefix") { Description = "Path prefix of the two files (default: cosign, giving cosign.key and cosign.pub)", DefaultValueFactory = _ => "cosign" };
        var force = new Option<bool>("--force") { Description = "Replace existing PREFIX.key and PREFIX.pub" };
        var json = GlobalOptions.Json();
        cmd.Options.Add(prefix);
        cmd.Options.Add(force);
        cmd.Options.Add(json);
        GlobalOptions.KeyPasswordCommands.Add(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var pre = p.GetValue(prefix)!;
            if (pre.Length == 0) throw new TreechunkException("--output-key-prefix is empty");
            string keyPath = pre + ".key", pubPath = pre + ".pub";
            var dir = Path.GetDirectoryName(Path.GetFullPath(keyPath))!;
            if (!Directory.Exists(dir)) throw new TreechunkException($"--output-key-prefix: directory {dir} does not exist");
            if (!p.GetValue(force))
                foreach (var f in new[] { keyPath, pubPath })
                    if (File.Exists(f) || Directory.Exists(f)) throw new TreechunkException($"{f} exists; give --force to replace it");
            var password = KeyPassword(p, confirm: true);
            using var key = SigningKeys.Generate();
            string keyPem;
            try
            {
                keyPem = SigningKeys.EncryptPrivateKey(key, password);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(password);
            }
            // The private key never exists on disk with wider permissions than 0600, nor half-written.
            WriteAtomically(keyPath, keyPem, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            WriteAtomically(pubPath, SigningKeys.PublicKeyPem(key),
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            if (p.GetValue(json))
                Run.PrintJson(new JsonObject { ["private_key"] = keyPath, ["public_key"] = pubPath, ["fingerprint"] = SigningKeys.Fingerprint(key) });
            else
                Console.WriteLine($"wrote {keyPath} (private, encrypted) and {pubPath} (public); key sha256 {SigningKeys.Fingerprint(key)}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Sign()
    {
        var cmd = new Command("sign", """
            Sign an image: an ECDSA P-256 signature over cosign's simple-signing payload, which
            names the manifest digest and the repository (identity). In a registry the signature
            manifest goes to tag sha256-HEX.sig in the image's repository, added to the
            signatures already there; with --referrers it is an OCI 1.1 referrer (subject: the
            image), indexed at tag sha256-HEX where the registry has no referrers API. In an
            oci: layout or oci-archive it is kept in the same place at that tag, and oci copy and
            oci push carry it along. The format is the one cosign and containers/image
            (policy.json sigstoreSigned, registries.d use-sigstore-attachments: true) read.

            A local image has no repository: give the one it will be pushed to with --identity.
            An encrypted key's password comes from --password-stdin, $TREECHUNK_PASSWORD,
            $COSIGN_PASSWORD or a prompt (see oci generate-key).

            Examples:
              treechunk oci sign --key cosign.key docker://registry.example/os/base:v1
              treechunk oci sign --key cosign.key --cert signer.pem --identity registry.example/os/base ./oci-image
              treechunk oci sign --key cosign.key --annotation build=42 --referrers docker://registry.example/os/base:v1
            """);
        var image = new Argument<string>("IMAGE") { Description = ImageHelp };
        var key = new Option<string>("--key") { Description = "Private key file (cosign's encrypted format, PKCS#8 or SEC1 PEM)", Required = true };
        var cert = new Option<string?>("--cert") { Description = "PEM certificate to attach; its public key must be the key's" };
        var annotations = new Option<string[]>("--annotation", "-a") { Description = "Claim k=v in the payload's optional section (repeatable)", AllowMultipleArgumentsPerToken = false };
        var identity = new Option<string?>("--identity") { Description = "Repository the signature names, HOST/REPO (default: the registry image's; required for local images)" };
        var referrers = new Option<bool>("--referrers") { Description = "Store as an OCI 1.1 referrer with subject (tag sha256-HEX where the registry has no referrers API) instead of at tag sha256-HEX.sig" };
        var json = GlobalOptions.Json();
        cmd.Arguments.Add(image);
        foreach (var o in new Option[] { key, cert, annotations, identity, referrers, json }) cmd.Options.Add(o);
        GlobalOptions.KeyPasswordCommands.Add(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var reference = ImageReference.Parse(p.GetValue(image)!);
            var keyPath = p.GetValue(key)!;
            string? certPem = p.GetValue(cert) is { } certPath ? ReadText(certPath, "--cert") : null;
            var claims = KeyValues.Parse(p.GetValue(annotations), "--annotation", allowCommaLists: false);
            using var signingKey = LoadPrivateKey(p, keyPath);
            var result = ImageSigning.Sign(reference, new SignOptions
            {
                Key = signingKey, CertificatePem = certPem, Annotations = claims, Identity = p.GetValue(identity), Referrers = p.GetValue(referrers),
            });
            if (p.GetValue(json))
                Run.PrintJson(new JsonObject
                {
                    ["image"] = reference.ToString(),
                    ["manifest_digest"] = result.ImageDigest,
                    ["identity"] = result.Identity,
                    ["signature_manifest"] = result.SignatureManifestDigest,
                    ["stored_at"] = result.StoredAt,
                    ["referrer"] = p.GetValue(referrers),
                    ["referrers_tag_fallback"] = result.Fallback,
                    ["signatures"] = result.Signatures,
                    ["key"] = SigningKeys.Fingerprint(signingKey),
                });
            else
                Console.WriteLine(p.GetValue(referrers)
                    ? $"signed {result.ImageDigest} for {result.Identity}: referrer {result.SignatureManifestDigest}{(result.Fallback ? $" (indexed at tag {SignatureStore.ReferrersTag(result.ImageDigest)}: no referrers API)" : "")}"
                    : $"signed {result.ImageDigest} for {result.Identity}: tag {result.StoredAt} ({result.Signatures} signature{(result.Signatures == 1 ? "" : "s")} there)");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Verify()
    {
        var cmd = new Command("verify", """
            Verify an image's signatures with a public key: finds them at tag sha256-HEX.sig and
            among the image's referrers (the registry's API, else tag sha256-HEX), and checks each
            signature over the exact payload bytes, that the payload's digest is the image's
            manifest digest and that its repository is the image's (or --identity's; a local
            image has none, so there the repository is shown, not checked). Prints each
            signature that verified and by which key; exits 1 with the reason when none did.

            Examples:
              treechunk oci verify --key cosign.pub docker://registry.example/os/base:v1
              treechunk oci verify --key cosign.pub --identity registry.example/os/base ./oci-image --json
            """);
        var image = new Argument<string>("IMAGE") { Description = ImageHelp };
        var key = new Option<string[]>("--key") { Description = "Public key file, PEM PUBLIC KEY (repeatable: any one of them may have signed)", Required = true };
        var identity = new Option<string?>("--identity") { Description = "Repository the signature must name, HOST/REPO (default: the registry image's)" };
        var json = GlobalOptions.Json();
        cmd.Arguments.Add(image);
        cmd.Options.Add(key);
        cmd.Options.Add(identity);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var reference = ImageReference.Parse(p.GetValue(image)!);
            var keys = p.GetValue(key)!.Select(path => (Name: path, Key: SigningKeys.LoadPublicKey(ReadText(path, "--key"), path))).ToList();
            try
            {
                var result = ImageSigning.Verify(reference, keys, p.GetValue(identity));
                foreach (var c in result.Checks) Run.Log($"{(c.Ok ? "ok " : "BAD")} {c.Origin} #{c.Layer}: {c.Problem ?? "verified"}");
                if (p.GetValue(json))
                    Run.PrintJson(new JsonObject
                    {
                        ["image"] = reference.ToString(),
                        ["manifest_digest"] = result.ImageDigest,
                        ["identity"] = result.ExpectedIdentity,
                        ["verified"] = result.Verified.Any(),
                        ["signatures"] = new JsonArray(result.Checks.Select(c => (JsonNode)new JsonObject
                        {
                            ["origin"] = c.Origin, ["layer"] = c.Layer, ["payload_digest"] = c.PayloadDigest, ["ok"] = c.Ok,
                            ["problem"] = c.Problem, ["docker_reference"] = c.Identity, ["key"] = c.Key,
                            ["optional"] = c.Optional == null ? null : new JsonObject(c.Optional.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
                        }).ToArray()),
                    });
                if (!result.Verified.Any()) throw new TreechunkException(result.Failure, ExitCodes.VerificationFailed);
                if (!p.GetValue(json))
                {
                    foreach (var c in result.Verified)
                        Console.WriteLine($"verified: {result.ImageDigest} signed by {c.Key} for {c.Identity} ({c.Origin}, signature {c.Layer})" +
                                          (result.ExpectedIdentity == null ? " (repository not checked: a local image has none; give --identity)" : ""));
                    int rejected = result.Checks.Count(c => !c.Ok);
                    if (rejected > 0) Run.Warn($"{rejected} other signature{(rejected == 1 ? "" : "s")} did not verify (--verbose says why)");
                }
                return ExitCodes.Ok;
            }
            finally
            {
                foreach (var k in keys) k.Key.Dispose();
            }
        }));
        return cmd;
    }

    private static ECDsa LoadPrivateKey(ParseResult p, string path)
    {
        var text = ReadText(path, "--key");
        return SigningKeys.LoadPrivateKey(text, path, () => KeyPassword(p, confirm: false));
    }

    private static string ReadText(string path, string option)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new TreechunkException($"{option}: {path} does not exist");
            if (info.Length > 1 << 20) throw new TreechunkException($"{option}: {path} is {info.Length} bytes, too large for a key or certificate file");
            return File.ReadAllText(path);
        }
        catch (UnauthorizedAccessException)
        {
            throw new TreechunkException($"{option}: cannot read {path} (permission denied)");
        }
    }

    /// <summary>The key's password: --password-stdin, $TREECHUNK_PASSWORD, $COSIGN_PASSWORD, else a prompt on a terminal. Never echoed or printed.</summary>
    private static byte[] KeyPassword(ParseResult p, bool confirm)
    {
        if (p.GetValue(GlobalOptions.PasswordStdin))
            return Encoding.UTF8.GetBytes(Console.In.ReadLine() ?? "");
        foreach (var name in new[] { "TREECHUNK_PASSWORD", "COSIGN_PASSWORD" })
            if (Environment.GetEnvironmentVariable(name) is { } fromEnv) return Encoding.UTF8.GetBytes(fromEnv);
        if (Console.IsInputRedirected)
            throw new TreechunkException("the key's password is needed: give --password-stdin, or set TREECHUNK_PASSWORD or COSIGN_PASSWORD (there is no terminal to ask on)");
        var first = Prompt(confirm ? "Enter password for the new private key: " : "Enter password for the private key: ");
        if (confirm && first != Prompt("Enter it again: "))
            throw new TreechunkException("the two passwords differ");
        return Encoding.UTF8.GetBytes(first);
    }

    private static string Prompt(string text)
    {
        Console.Error.Write(text);
        var sb = new StringBuilder();
        while (true)
        {
            var k = Console.ReadKey(intercept: true);
            if (k.Key == ConsoleKey.Enter) break;
            if (k.Key == ConsoleKey.Backspace) { if (sb.Length > 0) sb.Length--; continue; }
            if (k.KeyChar != '\0') sb.Append(k.KeyChar);
        }
        Console.Error.WriteLine();
        return sb.ToString();
    }

    private static void WriteAtomically(string path, string text, UnixFileMode mode)
    {
        using var file = AtomicFile.Create(path, mode);
        file.Stream.Write(Encoding.UTF8.GetBytes(text));
        file.Stream.Flush(flushToDisk: true);
        file.Commit(Path.GetFullPath(path));
    }
}
