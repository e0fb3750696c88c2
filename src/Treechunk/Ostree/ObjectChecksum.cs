using System.Buffers.Binary;

namespace Treechunk.Ostree;

/// <summary>
/// An object's SHA-256 checksum as its 32 bytes rather than its 64-character hex name: a commit
/// tree keeps one per entry, and at half a million entries the strings alone were 70 MB.
/// </summary>
public readonly struct ObjectChecksum : IEquatable<ObjectChecksum>
{
    private readonly ulong _a, _b, _c, _d;

    private ObjectChecksum(ReadOnlySpan<byte> raw)
    {
        _a = BinaryPrimitives.ReadUInt64BigEndian(raw);
        _b = BinaryPrimitives.ReadUInt64BigEndian(raw[8..]);
        _c = BinaryPrimitives.ReadUInt64BigEndian(raw[16..]);
        _d = BinaryPrimitives.ReadUInt64BigEndian(raw[24..]);
    }

    /// <summary>From a checksum's hex name; a malformed one is refused as <see cref="OstreeObjects.ValidateChecksum"/> refuses it.</summary>
    public static ObjectChecksum Parse(string hex)
    {
        OstreeObjects.ValidateChecksum(hex);
        Span<byte> raw = stackalloc byte[32];
        Convert.FromHexString(hex, raw, out _, out _);
        return new ObjectChecksum(raw);
    }

    /// <summary>The 64-character lowercase hex name.</summary>
    public override string ToString()
    {
        Span<byte> raw = stackalloc byte[32];
        BinaryPrimitives.WriteUInt64BigEndian(raw, _a);
        BinaryPrimitives.WriteUInt64BigEndian(raw[8..], _b);
        BinaryPrimitives.WriteUInt64BigEndian(raw[16..], _c);
        BinaryPrimitives.WriteUInt64BigEndian(raw[24..], _d);
        return Convert.ToHexStringLower(raw);
    }

    public bool Equals(ObjectChecksum other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;
    public override bool Equals(object? obj) => obj is ObjectChecksum other && Equals(other);
    // The bytes of a SHA-256 are uniform: any eight of them are a good hash.
    public override int GetHashCode() => (int)(_a ^ (_a >> 32));
    public static bool operator ==(ObjectChecksum x, ObjectChecksum y) => x.Equals(y);
    public static bool operator !=(ObjectChecksum x, ObjectChecksum y) => !x.Equals(y);
}
