using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Org.BouncyCastle.Crypto.Generators;
using Treechunk.Signing;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Signing;

/// <summary>
/// The pieces of cosign's key files against known answers and other implementations: NaCl's
/// secretbox test vector, RFC 7914's scrypt vector, libsodium (PyNaCl) and OpenSSL's scrypt
/// (Python's hashlib) opening a key file we wrote, and openssl's own PKCS#8 and SEC1 keys read.
/// </summary>
public class SigningKeysTests
{
    /// <summary>Debian's python3 (with python3-nacl), not whatever else is first on PATH.</summary>
    internal const string DebianPython = "/usr/bin/python3";

    private static byte[] Hex(string hex) => Convert.FromHexString(hex);

    // NaCl's tests/secretbox.c (also libsodium's test/default/secretbox.c): firstkey, nonce, and
    // the 131-byte message after the 32 zero bytes the old API wants.
    private static readonly byte[] NaclKey = Hex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389");
    private static readonly byte[] NaclNonce = Hex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37");
    private static readonly byte[] NaclMessage = Hex(
        "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c6129" +
        "6cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde" +
        "048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705");
    // The tag (first 16 bytes) then the ciphertext, as crypto_secretbox_easy lays them out.
    private static readonly byte[] NaclBox = Hex(
        "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186a" +
        "c0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae" +
        "90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5");

    [Fact]
    public void Secretbox_matches_the_NaCl_test_vector_and_refuses_altered_boxes()
    {
        Assert.Equal(Convert.ToHexStringLower(NaclBox), Convert.ToHexStringLower(SecretBox.Seal(NaclMessage, NaclNonce, NaclKey)));
        Assert.Equal(NaclMessage, SecretBox.Open(NaclBox, NaclNonce, NaclKey));
        var altered = (byte[])NaclBox.Clone();
        altered[40] ^= 1;
        Assert.Null(SecretBox.Open(altered, NaclNonce, NaclKey));
        var wrongKey = (byte[])NaclKey.Clone();
        wrongKey[0] ^= 0x80;
        Assert.Null(SecretBox.Open(NaclBox, NaclNonce, wrongKey));
        Assert.Null(SecretBox.Open(NaclBox[..10], NaclNonce, NaclKey));
    }

    [Fact]
    public void Scrypt_from_BouncyCastle_matches_RFC_7914_and_OpenSSL_with_cosigns_parameters()
    {
        // RFC 7914 section 12, the N=16384 vector.
        Assert.Equal(
            "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887",
            Convert.ToHexStringLower(SCrypt.Generate("pleaseletmein"u8.ToArray(), "SodiumChloride"u8.ToArray(), 16384, 8, 1, 64)));
        // cosign's parameters (N=2^15, r=8, p=1, 32-byte key and salt) against OpenSSL's scrypt through Python's hashlib.
        var salt = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var ours = SCrypt.Generate("cosign-password"u8.ToArray(), salt, 1 << 15, 8, 1, 32);
        var theirs = Proc.Check(DebianPython, "-c",
            "import hashlib; print(hashlib.scrypt(b'cosign-password', salt=bytes(range(32)), n=32768, r=8, p=1, dklen=32, maxmem=64*1024*1024).hex())").Trim();
        Assert.Equal(theirs, Convert.ToHexStringLower(ours));
        Assert.Equal("a770b8c1b70cce6e5b7753dd5e2dbc157cd89509966c09fade0308366f96b206", theirs);
    }

    [Fact]
    public void An_encrypted_key_file_opens_with_libsodium_and_OpenSSL_scrypt_and_round_trips()
    {
        using var tmp = new TempDir("keys");
        using var key = SigningKeys.Generate();
        var pem = SigningKeys.EncryptPrivateKey(key, "s3cret pass"u8);
        Assert.StartsWith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n", pem);
        File.WriteAllText(tmp["k.key"], pem);

        // The body as cosign writes it.
        PemEncoding.TryFind(pem, out var fields);
        var body = JsonNode.Parse(Convert.FromBase64String(pem[fields.Base64Data]))!;
        Assert.Equal("scrypt", (string)body["kdf"]!["name"]!);
        Assert.Equal(32768, (int)body["kdf"]!["params"]!["N"]!);
        Assert.Equal(8, (int)body["kdf"]!["params"]!["r"]!);
        Assert.Equal(1, (int)body["kdf"]!["params"]!["p"]!);
        Assert.Equal(32, Convert.FromBase64String((string)body["kdf"]!["salt"]!).Length);
        Assert.Equal("nacl/secretbox", (string)body["cipher"]!["name"]!);
        Assert.Equal(24, Convert.FromBase64String((string)body["cipher"]!["nonce"]!).Length);

        // Another implementation of each step decrypts it: hashlib's scrypt (OpenSSL) and PyNaCl's secretbox (libsodium).
        var pkcs8Hex = Proc.Check(DebianPython, "-c", """
            import base64, hashlib, json, sys, nacl.secret
            text = open(sys.argv[1]).read()
            b64 = ''.join(l for l in text.splitlines() if not l.startswith('-----'))
            body = json.loads(base64.b64decode(b64))
            p = body['kdf']['params']
            k = hashlib.scrypt(b's3cret pass', salt=base64.b64decode(body['kdf']['salt']), n=p['N'], r=p['r'], p=p['p'], dklen=32, maxmem=64*1024*1024)
            box = nacl.secret.SecretBox(k)
            print(box.decrypt(base64.b64decode(body['ciphertext']), base64.b64decode(body['cipher']['nonce'])).hex())
            """, tmp["k.key"]).Trim();
        Assert.Equal(Convert.ToHexStringLower(key.ExportPkcs8PrivateKey()), pkcs8Hex);
        // openssl reads the decrypted PKCS#8 as a P-256 key.
        File.WriteAllBytes(tmp["k.der"], Convert.FromHexString(pkcs8Hex));
        Assert.Contains("prime256v1", Proc.Check(Tools.Require("openssl"), "pkey", "-inform", "DER", "-in", tmp["k.der"], "-noout", "-text"));

        // And we open it again, to the same key; a wrong password is refused by name.
        using var back = SigningKeys.LoadPrivateKey(pem, "k.key", () => "s3cret pass"u8.ToArray());
        Assert.True(SigningKeys.SamePublicKey(key, back));
        var wrong = Assert.Throws<TreechunkException>(() => SigningKeys.LoadPrivateKey(pem, "k.key", () => "s3cret Pass"u8.ToArray()));
        Assert.Contains("wrong password", wrong.Message);
    }

    [Fact]
    public void A_key_file_libsodium_sealed_opens_here()
    {
        // The other direction: PyNaCl seals our PKCS#8 with a scrypt key from hashlib, in cosign's format.
        using var tmp = new TempDir("keys");
        using var key = SigningKeys.Generate();
        File.WriteAllBytes(tmp["k.der"], key.ExportPkcs8PrivateKey());
        var pem = Proc.Check(DebianPython, "-c", """
            import base64, hashlib, json, os, sys, nacl.secret
            der = open(sys.argv[1], 'rb').read()
            salt, nonce = os.urandom(32), os.urandom(24)
            k = hashlib.scrypt(b'from python', salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=64*1024*1024)
            ct = nacl.secret.SecretBox(k).encrypt(der, nonce).ciphertext
            body = json.dumps({'kdf': {'name': 'scrypt', 'params': {'N': 32768, 'r': 8, 'p': 1}, 'salt': base64.b64encode(salt).decode()},
                               'cipher': {'name': 'nacl/secretbox', 'nonce': base64.b64encode(nonce).decode()},
                               'ciphertext': base64.b64encode(ct).decode()}).encode()
            b64 = base64.b64encode(body).decode()
            print('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----')
            for i in range(0, len(b64), 64): print(b64[i:i+64])
            print('-----END ENCRYPTED SIGSTORE PRIVATE KEY-----')
            """, tmp["k.der"]);
        using var back = SigningKeys.LoadPrivateKey(pem, "py.key", () => "from python"u8.ToArray());
        Assert.True(SigningKeys.SamePublicKey(key, back));
    }

    [Fact]
    public void Unencrypted_PKCS8_and_SEC1_keys_from_openssl_sign_what_openssl_verifies()
    {
        using var tmp = new TempDir("keys");
        var openssl = Tools.Require("openssl");
        Proc.Check(openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", tmp["sec1.pem"]);
        Proc.Check(openssl, "pkcs8", "-topk8", "-nocrypt", "-in", tmp["sec1.pem"], "-out", tmp["pkcs8.pem"]);
        Proc.Check(openssl, "ec", "-in", tmp["sec1.pem"], "-pubout", "-out", tmp["pub.pem"]);
        Assert.Contains("-----BEGIN EC PRIVATE KEY-----", File.ReadAllText(tmp["sec1.pem"]));
        Assert.Contains("-----BEGIN PRIVATE KEY-----", File.ReadAllText(tmp["pkcs8.pem"]));
        var data = Encoding.UTF8.GetBytes("{\"critical\":{}}");
        File.WriteAllBytes(tmp["data"], data);
        foreach (var file in new[] { "sec1.pem", "pkcs8.pem" })
        {
            using var key = SigningKeys.LoadPrivateKey(File.ReadAllText(tmp[file]), file, () => throw new InvalidOperationException("no password is needed"));
            using var pub = SigningKeys.LoadPublicKey(File.ReadAllText(tmp["pub.pem"]), "pub.pem");
            Assert.True(SigningKeys.SamePublicKey(key, pub), file);
            File.WriteAllBytes(tmp["sig"], key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
            Assert.Contains("Verified OK", Proc.Check(openssl, "dgst", "-sha256", "-verify", tmp["pub.pem"], "-signature", tmp["sig"], tmp["data"]));
        }
        // A key on another curve is refused by name.
        Proc.Check(openssl, "ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", tmp["p384.pem"]);
        var e = Assert.Throws<TreechunkException>(() => SigningKeys.LoadPrivateKey(File.ReadAllText(tmp["p384.pem"]), "p384.pem", () => []));
        Assert.Contains("only ECDSA P-256", e.Message);
    }
}
