using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;

namespace Treechunk.Signing;

/// <summary>
/// NaCl's crypto_secretbox (XSalsa20-Poly1305), the cipher of cosign's encrypted key files.
/// BouncyCastle has the two primitives but not the box, so it is put together here the way NaCl
/// defines it: the first 32 bytes of the XSalsa20 key stream are the one-time Poly1305 key, the
/// rest of the stream encrypts the message, and the box is the 16-byte tag over the ciphertext
/// followed by the ciphertext.
/// </summary>
public static class SecretBox
{
    public const int KeySize = 32;
    public const int NonceSize = 24;
    public const int TagSize = 16;

    public static byte[] Seal(ReadOnlySpan<byte> message, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> key)
    {
        var stream = Stream(nonce, key, out var macKey);
        var box = new byte[TagSize + message.Length];
        stream.ProcessBytes(message, box.AsSpan(TagSize));
        Tag(macKey, box.AsSpan(TagSize), box.AsSpan(0, TagSize));
        CryptographicOperations.ZeroMemory(macKey);
        return box;
    }

    /// <summary>The message, or null when the box was not sealed with this key and nonce (or was altered).</summary>
    public static byte[]? Open(ReadOnlySpan<byte> box, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> key)
    {
        if (box.Length < TagSize) return null;
        var stream = Stream(nonce, key, out var macKey);
        Span<byte> tag = stackalloc byte[TagSize];
        Tag(macKey, box[TagSize..], tag);
        CryptographicOperations.ZeroMemory(macKey);
        // Authenticate before decrypting anything, in constant time.
        if (!CryptographicOperations.FixedTimeEquals(tag, box[..TagSize])) return null;
        var message = new byte[box.Length - TagSize];
        stream.ProcessBytes(box[TagSize..], message);
        return message;
    }

    private static XSalsa20Engine Stream(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> key, out byte[] macKey)
    {
        if (key.Length != KeySize) throw new ArgumentException($"secretbox key must be {KeySize} bytes");
        if (nonce.Length != NonceSize) throw new ArgumentException($"secretbox nonce must be {NonceSize} bytes");
        var engine = new XSalsa20Engine();
        engine.Init(true, new ParametersWithIV(new KeyParameter(key.ToArray()), nonce.ToArray()));
        macKey = new byte[32];
        engine.ProcessBytes(new byte[32], macKey);
        return engine;
    }

    private static void Tag(byte[] macKey, ReadOnlySpan<byte> ciphertext, Span<byte> tag)
    {
        // Poly1305 without a block cipher: the 32-byte key is r (clamped by BouncyCastle) then s.
        var mac = new Poly1305();
        mac.Init(new KeyParameter(macKey));
        mac.BlockUpdate(ciphertext);
        mac.DoFinal(tag);
    }
}
