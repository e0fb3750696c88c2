using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Treechunk.Oci;

/// <summary>
/// The zstd:chunked layer format of containers/storage (pkg/chunked), as its writer lays it out:
/// <code>
/// [frame: headers][frame: file 1 piece 1][frame: piece 2]...[frame: padding + headers]...[frame: padding + tar end]
/// [skippable: zstd(TOC JSON)][skippable: zstd(tar-split JSON lines)][skippable: 64-byte footer]
/// </code>
/// Every frame is an ordinary zstd frame and the three trailers are skippable frames, so any zstd
/// reader decompresses the blob to the plain tar (the diff_id is the tar's). The TOC names each
/// file's content frames by compressed offsets and content digests; the annotations below say
/// where the TOC is and what its compressed bytes hash to, so a client can fetch it with one
/// Range request and trust it before it trusts any offset in it.
/// </summary>
public static class ZstdChunked
{
    /// <summary>"sha256:..." of the compressed TOC bytes (the skippable frame's payload).</summary>
    public const string ManifestChecksumAnnotation = "io.github.containers.zstd-chunked.manifest-checksum";
    /// <summary>"OFFSET:LENGTH:UNCOMPRESSED_LENGTH:1" of the compressed TOC in the blob (1 = the CRFS-style TOC).</summary>
    public const string ManifestPositionAnnotation = "io.github.containers.zstd-chunked.manifest-position";
    /// <summary>"OFFSET:LENGTH:UNCOMPRESSED_LENGTH" of the compressed tar-split in the blob.</summary>
    public const string TarSplitPositionAnnotation = "io.github.containers.zstd-chunked.tarsplit-position";

    /// <summary>
    /// The names containers/image used before it moved them under io.github (c/image 5.23,
    /// podman 4.3 and skopeo 1.9 of Debian 12 read and write only these): same values, written
    /// too, so those podmans pull treechunk's layers partially as well.
    /// </summary>
    public const string LegacyManifestChecksumAnnotation = "io.containers.zstd-chunked.manifest-checksum";
    public const string LegacyManifestPositionAnnotation = "io.containers.zstd-chunked.manifest-position";

    public const int ManifestTypeCrfs = 1;
    public const int FooterSize = 64;
    /// <summary>A skippable frame's magic and length fields.</summary>
    public const int SkippableHeaderSize = 8;
    private const uint SkippableMagic = 0x184D2A50;
    /// <summary>The footer's last 8 bytes: "GNUlInUx".</summary>
    public static ReadOnlySpan<byte> FooterMagic => "GNUlInUx"u8;

    public const string TypeRegular = "reg", TypeHardlink = "hardlink", TypeSymlink = "symlink", TypeDirectory = "dir",
        TypeChar = "char", TypeBlock = "block", TypeFifo = "fifo", TypeChunk = "chunk";

    public static void WriteSkippableFrame(Stream s, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[SkippableHeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(header, SkippableMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], checked((uint)payload.Length));
        s.Write(header);
        s.Write(payload);
    }

    /// <summary>The footer payload: TOC offset, compressed and uncompressed length, type, then the same for the tar-split, then the magic; little endian.</summary>
    public static byte[] Footer(Position toc, Position tarSplit)
    {
        var f = new byte[FooterSize];
        var s = f.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(s[0..], (ulong)toc.Offset);
        BinaryPrimitives.WriteUInt64LittleEndian(s[8..], (ulong)toc.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(s[16..], (ulong)toc.UncompressedLength);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], ManifestTypeCrfs);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], (ulong)tarSplit.Offset);
        BinaryPrimitives.WriteUInt64LittleEndian(s[40..], (ulong)tarSplit.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(s[48..], (ulong)tarSplit.UncompressedLength);
        FooterMagic.CopyTo(s[56..]);
        return f;
    }

    /// <summary>Where a compressed section lies in the blob, and how long it is once decompressed.</summary>
    public readonly record struct Position(long Offset, long Length, long UncompressedLength)
    {
        public long End => Offset + Length;
    }

    /// <summary>Whether a layer descriptor says it is zstd:chunked (a zstd layer with the TOC annotations).</summary>
    public static bool IsChunked(Descriptor d) =>
        d.MediaType == MediaTypes.LayerZstd && d.Annotations is { } a &&
        ((a.ContainsKey(ManifestPositionAnnotation) && a.ContainsKey(ManifestChecksumAnnotation)) ||
         (a.ContainsKey(LegacyManifestPositionAnnotation) && a.ContainsKey(LegacyManifestChecksumAnnotation)));

    /// <summary>The TOC's position and checksum from a layer's annotations, checked against the blob's size.</summary>
    public static (Position Toc, string Checksum) TocLocation(Descriptor d)
    {
        var a = d.Annotations ?? throw new TreechunkException($"layer {d.Digest} has no zstd:chunked annotations");
        bool current = a.ContainsKey(ManifestPositionAnnotation);
        var positionKey = current ? ManifestPositionAnnotation : LegacyManifestPositionAnnotation;
        var text = a.GetValueOrDefault(positionKey) ?? "";
        var parts = text.Split(':');
        if (parts.Length != 4 || !long.TryParse(parts[0], out var offset) || !long.TryParse(parts[1], out var length) ||
            !long.TryParse(parts[2], out var uncompressed) || parts[3] != "1" ||
            offset < 0 || length <= 0 || uncompressed <= 0 || offset + length > d.Size || uncompressed > MaxTocSize)
            throw new TreechunkException($"layer {d.Digest}: malformed {positionKey} '{text}' (expected OFFSET:LENGTH:UNCOMPRESSED:1 within the blob's {d.Size} bytes)");
        var checksum = a.GetValueOrDefault(current ? ManifestChecksumAnnotation : LegacyManifestChecksumAnnotation) ?? "";
        Digest.Hex(checksum);
        return (new Position(offset, length, uncompressed), checksum);
    }

    /// <summary>The most a TOC may be once decompressed; containers/storage's own limit is 50 MB.</summary>
    public const long MaxTocSize = 256L << 20;

    /// <summary>Decompresses and parses a TOC whose compressed bytes were checked against the annotation.</summary>
    public static Toc ParseToc(byte[] compressed, Position position, string what)
    {
        byte[] json;
        try
        {
            using var d = new ZstdSharp.Decompressor();
            json = d.Unwrap(compressed).ToArray();
        }
        catch (ZstdSharp.ZstdException e)
        {
            throw new TreechunkException($"{what}: the table of contents does not decompress ({e.Message})", ExitCodes.VerificationFailed);
        }
        if (json.Length != position.UncompressedLength)
            throw new TreechunkException($"{what}: the table of contents is {json.Length} bytes, the annotation says {position.UncompressedLength}", ExitCodes.VerificationFailed);
        try
        {
            var toc = JsonSerializer.Deserialize(json, ZstdChunkedJson.Default.Toc) ?? throw new JsonException("null");
            if (toc.Version != 1) throw new TreechunkException($"{what}: table of contents version {toc.Version} (expected 1)");
            return toc;
        }
        catch (JsonException e)
        {
            throw new TreechunkException($"{what}: the table of contents is not valid JSON ({e.Message})", ExitCodes.VerificationFailed);
        }
    }

    public static byte[] SerializeToc(Toc toc) => JsonSerializer.SerializeToUtf8Bytes(toc, (System.Text.Json.Serialization.Metadata.JsonTypeInfo<Toc>)WriteOptions.GetTypeInfo(typeof(Toc)));

    // Base64 values and names are written as they are ('+' and non-ASCII unescaped), as Go does; still plain JSON.
    private static readonly JsonSerializerOptions WriteOptions = new(ZstdChunkedJson.Default.Options)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The table of contents. Entries are in tar order.</summary>
    public sealed class Toc
    {
        [JsonPropertyName("version")] public int Version { get; set; } = 1;
        [JsonPropertyName("entries")] public List<TocEntry> Entries { get; set; } = [];
        /// <summary>"sha256:..." of the compressed tar-split bytes.</summary>
        [JsonPropertyName("tarSplitDigest")] public string? TarSplitDigest { get; set; }
    }

    /// <summary>
    /// One TOC entry, fields as containers/storage names them and in its order (absent when
    /// zero or empty, as Go's omitempty writes them). A regular file with several content frames
    /// is its "reg" entry (the first frame's chunk fields) followed by one "chunk" entry per further
    /// frame; a chunk's compressed end is the next chunk's offset, the last one's the file's endOffset.
    /// </summary>
    public sealed class TocEntry
    {
        [JsonPropertyName("type")] public string Type { get; set; } = "";
        [JsonPropertyName("name")] public string Name { get; set; } = "";
        [JsonPropertyName("linkName")] public string? LinkName { get; set; }
        [JsonPropertyName("mode")] public long Mode { get; set; }
        [JsonPropertyName("size")] public long Size { get; set; }
        [JsonPropertyName("uid")] public long Uid { get; set; }
        [JsonPropertyName("gid")] public long Gid { get; set; }
        [JsonPropertyName("modtime")] public string? ModTime { get; set; }
        [JsonPropertyName("devMajor")] public long DevMajor { get; set; }
        [JsonPropertyName("devMinor")] public long DevMinor { get; set; }
        /// <summary>Extended attributes, values base64.</summary>
        [JsonPropertyName("xattrs")] public SortedDictionary<string, string>? Xattrs { get; set; }
        /// <summary>"sha256:..." of the whole file's content; absent for empty files.</summary>
        [JsonPropertyName("digest")] public string? Digest { get; set; }
        /// <summary>Compressed offset of the (first) content frame.</summary>
        [JsonPropertyName("offset")] public long Offset { get; set; }
        /// <summary>Compressed end of the last content frame (on the "reg" entry).</summary>
        [JsonPropertyName("endOffset")] public long EndOffset { get; set; }
        [JsonPropertyName("chunkSize")] public long ChunkSize { get; set; }
        [JsonPropertyName("chunkOffset")] public long ChunkOffset { get; set; }
        [JsonPropertyName("chunkDigest")] public string? ChunkDigest { get; set; }
        [JsonPropertyName("chunkType")] public string? ChunkType { get; set; }
        /// <summary>Members this model does not know (accesstime, changetime...), kept.</summary>
        [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
    }

    /// <summary>One content frame of a file, as the TOC describes it.</summary>
    /// <param name="ContentDigest">The digest of the frame's uncompressed bytes: the chunk's, or the file's when it is one frame.</param>
    public readonly record struct ContentFrame(long Offset, long End, string ContentDigest, long ContentSize, string Name)
    {
        public long Length => End - Offset;
    }

    /// <summary>
    /// The content frames a TOC lists, in blob order, each with its compressed extent (chunk ends
    /// derived as containers/storage derives them). Refuses frames that overlap, run backwards or
    /// lie outside [0, <paramref name="limit"/>), so a rebuild can trust them as a partition.
    /// </summary>
    public static List<ContentFrame> ContentFrames(Toc toc, long limit, string what)
    {
        var frames = new List<ContentFrame>();
        var entries = toc.Entries;
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (e.Type != TypeRegular || e.Size == 0) continue;
            int chunks = 0;
            while (i + 1 + chunks < entries.Count && entries[i + 1 + chunks].Type == TypeChunk) chunks++;
            if (chunks == 0)
            {
                if (e.Digest == null) throw Bad($"{e.Name} has content but no digest");
                frames.Add(new ContentFrame(e.Offset, e.EndOffset, e.Digest, e.Size, e.Name));
                continue;
            }
            for (int j = 0; j <= chunks; j++)
            {
                var c = entries[i + j];
                long end = j < chunks ? entries[i + j + 1].Offset : e.EndOffset;
                // A "zeros" chunk (a hole, as containers/storage writes them) is still a frame of zeros with its digest.
                var digest = c.ChunkDigest ?? throw Bad($"{e.Name}: a chunk has no chunkDigest");
                frames.Add(new ContentFrame(c.Offset, end, digest, c.ChunkSize, e.Name));
            }
            i += chunks;
        }
        frames.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        long last = 0;
        foreach (var f in frames)
        {
            if (f.Offset < last || f.End <= f.Offset || f.End > limit || f.ContentSize <= 0)
                throw Bad($"{f.Name}: content frame {f.Offset}-{f.End} overlaps another or lies outside the blob");
            Digest.Hex(f.ContentDigest);
            last = f.End;
        }
        return frames;

        TreechunkException Bad(string why) => new($"{what}: table of contents: {why}", ExitCodes.VerificationFailed);
    }
}

/// <summary>CRC-64 with the ISO 3309 polynomial, reflected, as Go's hash/crc64 ISO table computes it (tar-split's file checksums).</summary>
public static class Crc64Iso
{
    private static readonly ulong[] Table = MakeTable();

    private static ulong[] MakeTable()
    {
        const ulong poly = 0xD800000000000000;
        var t = new ulong[256];
        for (int i = 0; i < 256; i++)
        {
            ulong crc = (ulong)i;
            for (int j = 0; j < 8; j++) crc = (crc & 1) == 1 ? (crc >> 1) ^ poly : crc >> 1;
            t[i] = crc;
        }
        return t;
    }

    /// <summary>Continues <paramref name="crc"/> (0 to start) over <paramref name="data"/>.</summary>
    public static ulong Update(ulong crc, ReadOnlySpan<byte> data)
    {
        crc = ~crc;
        foreach (var b in data) crc = Table[(byte)crc ^ b] ^ (crc >> 8);
        return ~crc;
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault)]
[JsonSerializable(typeof(ZstdChunked.Toc))]
internal sealed partial class ZstdChunkedJson : JsonSerializerContext;
