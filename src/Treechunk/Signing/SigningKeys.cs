using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Org.BouncyCastle.Crypto.Generators;

namespace Treechunk.Signing;

/// <summary>
/// Key files as cosign writes and reads them, so that cosign, skopeo and podman use ours and we
/// use theirs: the public key is PEM <c>PUBLIC KEY</c> (SubjectPublicKeyInfo), the private key PEM
/// <c>ENCRYPTED SIGSTORE PRIVATE KEY</c> (or cosign's older label <c>ENCRYPTED COSIGN PRIVATE
/// KEY</c>) whose body is JSON: scrypt parameters and salt, a secretbox nonce and the sealed
/// PKCS#8 DER. Unencrypted PKCS#8 (<c>PRIVATE KEY</c>) and SEC1 (<c>EC PRIVATE KEY</c>) files
/// are read too. Only ECDSA P-256 is used: the scheme every sigstore verifier must support.
/// </summary>
public static class SigningKeys
{
    public const string EncryptedLabel = "ENCRYPTED SIGSTORE PRIVATE KEY";
    public const string CosignEncryptedLabel = "ENCRYPTED COSIGN PRIVATE KEY";
    public const string P256Oid = "1.2.840.10045.3.1.7";

    /// <summary>
    /// scrypt N for new files: 2^15, r 8, p 1, the parameters every reader of the format accepts.
    /// cosign now writes 2^16, which it and newer readers accept, but the reader skopeo 1.9 and
    /// podman 4.3 carry accepts 2^15 alone, and a key file they cannot open is of no use here.
    /// </summary>
    public const int NewFileScryptN = 1 << 15;

    /// <summary>The scrypt parameters a reader accepts (cosign's legacy, standard and OWASP sets); anything else could make a file cost minutes or gigabytes to open.</summary>
    private static readonly int[] AcceptedScryptN = [1 << 15, 1 << 16, 1 << 17];

    public static ECDsa Generate() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>The public key as PEM <c>PUBLIC KEY</c>.</summary>
    public static string PublicKeyPem(ECDsa key) => key.ExportSubjectPublicKeyInfoPem() + "\n";

    /// <summary>The private key sealed with <paramref name="password"/>, as the PEM text of a cosign key file.</summary>
    public static string EncryptPrivateKey(ECDsa key, ReadOnlySpan<byte> password, int scryptN = NewFileScryptN)
    {
        var pkcs8 = key.ExportPkcs8PrivateKey();
        try
        {
            var salt = RandomNumberGenerator.GetBytes(32);
            var nonce = RandomNumberGenerator.GetBytes(SecretBox.NonceSize);
            var boxKey = SCrypt.Generate(password.ToArray(), salt, scryptN, 8, 1, SecretBox.KeySize);
            var sealedKey = SecretBox.Seal(pkcs8, nonce, boxKey);
            CryptographicOperations.ZeroMemory(boxKey);
            // The members in the order cosign's Go structs write them.
            var body = new JsonObject
            {
                ["kdf"] = new JsonObject
                {
                    ["name"] = "scrypt",
                    ["params"] = new JsonObject { ["N"] = scryptN, ["r"] = 8, ["p"] = 1 },
                    ["salt"] = Convert.ToBase64String(salt),
                },
                ["cipher"] = new JsonObject { ["name"] = "nacl/secretbox", ["nonce"] = Convert.ToBase64String(nonce) },
                ["ciphertext"] = Convert.ToBase64String(sealedKey),
            };
            return PemEncoding.WriteString(EncryptedLabel, Encoding.UTF8.GetBytes(body.ToJsonString(new JsonSerializerOptions
            {
                // As Go writes it: base64's '+' and '/' literally, not as \u002B.
                Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            }))) + "\n";
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    /// <summary>Whether the PEM text is an encrypted key file, i.e. needs a password.</summary>
    public static bool IsEncrypted(string pemText, string name) => FirstPem(pemText, name).Label is EncryptedLabel or CosignEncryptedLabel;

    /// <summary>
    /// Reads a private key file: encrypted (with <paramref name="password"/>, asked only then),
    /// PKCS#8 or SEC1. Every failure is one line naming the file and what is wrong with it.
    /// </summary>
    public static ECDsa LoadPrivateKey(string pemText, string name, Func<byte[]> password)
    {
        var (label, der) = FirstPem(pemText, name);
        var key = ECDsa.Create();
        try
        {
            switch (label)
            {
                case EncryptedLabel or CosignEncryptedLabel:
                    var pkcs8 = Decrypt(der, name, password());
                    try { Import(() => key.ImportPkcs8PrivateKey(pkcs8, out _), name, "the decrypted key is not a PKCS#8 EC private key"); }
                    finally { CryptographicOperations.ZeroMemory(pkcs8); }
                    break;
                case "PRIVATE KEY":
                    Import(() => key.ImportPkcs8PrivateKey(der, out _), name, "not a PKCS#8 EC private key (only ECDSA P-256 keys are supported)");
                    break;
                case "EC PRIVATE KEY":
                    Import(() => key.ImportECPrivateKey(der, out _), name, "not a valid SEC1 EC private key");
                    break;
                case "PUBLIC KEY":
                    throw new TreechunkException($"{name} is a public key; signing needs the private key (the .key file)");
                default:
                    throw new TreechunkException($"{name}: unsupported private key type '{label}' (expected {EncryptedLabel}, PRIVATE KEY or EC PRIVATE KEY)");
            }
            RequireP256(key, name);
            return key;
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>Reads a public key file: PEM <c>PUBLIC KEY</c> holding an ECDSA P-256 key.</summary>
    public static ECDsa LoadPublicKey(string pemText, string name)
    {
        var (label, der) = FirstPem(pemText, name);
        if (label != "PUBLIC KEY")
            throw new TreechunkException(label.Contains("PRIVATE KEY", StringComparison.Ordinal)
                ? $"{name} is a private key; verifying needs the public key (PEM PUBLIC KEY, the .pub file)"
                : $"{name}: '{label}' is not a public key (expected PEM PUBLIC KEY)");
        var key = ECDsa.Create();
        try
        {
            Import(() => key.ImportSubjectPublicKeyInfo(der, out _), name, "not an EC public key (only ECDSA P-256 keys are supported)");
            RequireP256(key, name);
            return key;
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>Whether two keys are the same public key (a certificate's key against the signing key).</summary>
    public static bool SamePublicKey(ECDsa a, ECDsa b) =>
        a.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(b.ExportSubjectPublicKeyInfo());

    /// <summary>SHA-256 of the SubjectPublicKeyInfo, hex: how a key is named in reports.</summary>
    public static string Fingerprint(ECDsa key) => Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));

    private static byte[] Decrypt(byte[] body, string name, byte[] password)
    {
        string Bad(string what) => $"{name}: corrupt encrypted key file ({what})";
        JsonNode? doc;
        try
        {
            doc = JsonNode.Parse(body);
        }
        catch (JsonException)
        {
            throw new TreechunkException(Bad("its body is not JSON"));
        }
        try
        {
            var kdf = doc?["kdf"] ?? throw new TreechunkException(Bad("no kdf"));
            var cipher = doc["cipher"] ?? throw new TreechunkException(Bad("no cipher"));
            if ((string?)kdf["name"] != "scrypt") throw new TreechunkException($"{name}: unsupported key derivation '{kdf["name"]}' (expected scrypt)");
            if ((string?)cipher["name"] != "nacl/secretbox") throw new TreechunkException($"{name}: unsupported cipher '{cipher["name"]}' (expected nacl/secretbox)");
            var p = kdf["params"] ?? throw new TreechunkException(Bad("no scrypt parameters"));
            int n = (int)p["N"]!, r = (int)p["r"]!, par = (int)p["p"]!;
            if (!AcceptedScryptN.Contains(n) || r != 8 || par != 1)
                throw new TreechunkException($"{name}: unsupported scrypt parameters N={n} r={r} p={par}");
            var salt = Convert.FromBase64String((string)kdf["salt"]!);
            var nonce = Convert.FromBase64String((string)cipher["nonce"]!);
            var sealedKey = Convert.FromBase64String((string)doc["ciphertext"]!);
            if (nonce.Length != SecretBox.NonceSize) throw new TreechunkException(Bad($"a nonce of {nonce.Length} bytes"));
            var boxKey = SCrypt.Generate(password, salt, n, r, par, SecretBox.KeySize);
            try
            {
                // secretbox cannot tell a wrong password from altered bytes; a wrong password is by far the likelier.
                return SecretBox.Open(sealedKey, nonce, boxKey)
                       ?? throw new TreechunkException($"{name}: wrong password, or the key file was altered (decryption failed)");
            }
            finally
            {
                CryptographicOperations.ZeroMemory(boxKey);
            }
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or NullReferenceException or JsonException or InvalidCastException)
        {
            throw new TreechunkException(Bad("a member is missing or malformed"));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
        }
    }

    private static (string Label, byte[] Der) FirstPem(string text, string name)
    {
        if (!PemEncoding.TryFind(text, out var fields))
            throw new TreechunkException($"{name} is not a PEM key file (no -----BEGIN ...----- block)");
        var label = text[fields.Label];
        var der = new byte[fields.DecodedDataLength];
        if (!Convert.TryFromBase64Chars(text.AsSpan()[fields.Base64Data], der, out _))
            throw new TreechunkException($"{name}: corrupt PEM block '{label}'");
        return (label, der);
    }

    private static void Import(Action import, string name, string what)
    {
        try
        {
            import();
        }
        catch (CryptographicException)
        {
            throw new TreechunkException($"{name}: {what}");
        }
    }

    private static void RequireP256(ECDsa key, string name)
    {
        var curve = key.ExportParameters(false).Curve;
        if (curve.Oid?.Value != P256Oid && curve.Oid?.FriendlyName is not ("nistP256" or "ECDSA_P256"))
            throw new TreechunkException($"{name}: the key is on curve {curve.Oid?.FriendlyName ?? curve.Oid?.Value ?? "(explicit)"}; only ECDSA P-256 is supported");
    }
}
