using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Treechunk.Oci;
using Treechunk.Posix;
using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Layers;

/// <summary>
/// zstd:chunked (see <see cref="ZstdChunked"/>): the same reproducible PAX tar as
/// <see cref="TarLayerFormat"/> with zstd, framed so that each regular file's content is its own
/// zstd frame (large files one frame per content-defined piece, <see cref="ContentPieces"/>) and
/// the tar headers between two contents share a frame, followed by the table of contents, the
/// tar-split and the footer in skippable frames. Frames are whole-buffer compressions at a fixed
/// level, single-threaded, so the same file compresses to the same frame bytes in any layer:
/// that is what lets a partial pull copy a frame from a local blob instead of fetching it.
/// </summary>
public sealed record ZstdChunkedLayerFormat(int Level) : ILayerFormat
{
    public string MediaType => MediaTypes.LayerZstd;

    public string CacheKey => $"zstd:chunked|{Level}|{Zstd.EncoderId}|{ContentPieces.Id}";

    public ILayerEncoder Begin(Stream blob, long sourceDateEpoch) => new Encoder(this, blob, sourceDateEpoch);

    private sealed class Encoder : ILayerEncoder
    {
        private readonly Stream _blob;
        private readonly long _epoch;
        private readonly ZstdFrameCompressor _frames;
        private readonly IncrementalHash _diffId = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly MemoryStream _header = new();
        private readonly PaxTarWriter _tar;
        /// <summary>Uncompressed bytes of the frame being gathered: padding and headers since the last content.</summary>
        private readonly MemoryStream _pending = new();
        private readonly TarSplitWriter _tarSplit;
        private readonly ZstdChunked.Toc _toc = new();
        private readonly byte[] _piece = ArrayPool<byte>.Shared.Rent(ContentPieces.MaxPiece);
        private long _offset, _uncompressed;
        private int _padding;
        private bool _disposed;

        public Encoder(ZstdChunkedLayerFormat format, Stream blob, long epoch)
        {
            _blob = blob;
            _epoch = epoch;
            _frames = new ZstdFrameCompressor(format.Level);
            _tar = new PaxTarWriter(_header, epoch);
            _tarSplit = new TarSplitWriter(format.Level);
        }

        public void Add(TreeEntry entry, Stream? content)
        {
            _header.SetLength(0);
            long size = _tar.WriteHeader(entry);
            // tar-split's segment: the previous file's padding, then this entry's header blocks.
            var segment = new byte[_padding + _header.Length];
            _header.GetBuffer().AsSpan(0, (int)_header.Length).CopyTo(segment.AsSpan(_padding));
            Uncompressed(segment);
            _pending.Write(segment);
            _tarSplit.Segment(segment);

            var tocEntry = NewTocEntry(entry, _header.Length);
            _toc.Entries.Add(tocEntry);
            ulong crc = 0;
            if (size > 0)
            {
                if (content == null) throw new ArgumentNullException(nameof(content));
                FlushPending();
                crc = WriteContent(entry, content, size, tocEntry);
            }
            _tarSplit.File(FileNames.Encode(entry.Type == EntryType.Directory ? entry.Path + "/" : entry.Path), size, size > 0 ? crc : null);
            _padding = PaxTarWriter.Padding(size).Length;
        }

        /// <summary>Writes a file's content as one frame per piece and fills its TOC entries; returns tar-split's crc64.</summary>
        private ulong WriteContent(TreeEntry entry, Stream content, long size, ZstdChunked.TocEntry first)
        {
            using var fileHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            ulong crc = 0;
            var pieces = new List<ZstdChunked.TocEntry>();
            long done = 0;
            int filled = 0;
            first.Offset = _offset;
            while (done < size)
            {
                while (filled < _piece.Length && done + filled < size)
                {
                    int n = content.Read(_piece, filled, (int)Math.Min(_piece.Length - filled, size - done - filled));
                    if (n == 0) throw new TreechunkException($"{FileNames.Display(entry.Path)}: file shrank while it was being read (expected {size} bytes)", ExitCodes.EnvironmentError);
                    filled += n;
                }
                int cut = size <= ContentPieces.MaxPiece ? filled : ContentPieces.Cut(_piece.AsSpan(0, filled));
                var piece = _piece.AsSpan(0, cut);
                fileHash.AppendData(piece);
                crc = Crc64Iso.Update(crc, piece);
                Uncompressed(piece);
                var chunk = pieces.Count == 0 ? first : new ZstdChunked.TocEntry { Type = ZstdChunked.TypeChunk, Name = first.Name };
                chunk.Offset = _offset;
                chunk.ChunkOffset = done;
                chunk.ChunkSize = cut;
                chunk.ChunkDigest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(piece));
                if (pieces.Count > 0) _toc.Entries.Add(chunk);
                pieces.Add(chunk);
                Emit(_frames.Compress(piece));
                done += cut;
                _piece.AsSpan(cut, filled - cut).CopyTo(_piece);
                filled -= cut;
            }
            first.Digest = "sha256:" + Convert.ToHexStringLower(fileHash.GetCurrentHash());
            first.EndOffset = _offset;
            if (pieces.Count == 1)
            {
                // One frame: containers/storage writes no chunk fields then.
                first.ChunkOffset = 0;
                first.ChunkSize = 0;
                first.ChunkDigest = null;
            }
            return crc;
        }

        private ZstdChunked.TocEntry NewTocEntry(TreeEntry e, long headerBytes)
        {
            var name = e.Type == EntryType.Directory ? e.Path + "/" : e.Path;
            var xattrs = e.Xattrs.Count == 0 ? null : new SortedDictionary<string, string>(
                e.Xattrs.ToDictionary(kv => kv.Key, kv => Convert.ToBase64String(kv.Value)), StringComparer.Ordinal);
            long mtime = Math.Min(Math.Max(e.MTime, 0), _epoch);
            return new ZstdChunked.TocEntry
            {
                Type = e.Type switch
                {
                    EntryType.Regular => ZstdChunked.TypeRegular,
                    EntryType.Hardlink => ZstdChunked.TypeHardlink,
                    EntryType.Symlink => ZstdChunked.TypeSymlink,
                    EntryType.Directory => ZstdChunked.TypeDirectory,
                    EntryType.CharDevice => ZstdChunked.TypeChar,
                    EntryType.BlockDevice => ZstdChunked.TypeBlock,
                    EntryType.Fifo => ZstdChunked.TypeFifo,
                    _ => throw new ArgumentOutOfRangeException(nameof(e)),
                },
                Name = JsonText(name),
                LinkName = e.LinkTarget is { Length: > 0 } l ? JsonText(l) : null,
                // What the tar header says, as a tar reader would report it.
                Mode = e.Mode & 0xFFF,
                Size = e.Type == EntryType.Regular ? e.Size : 0,
                Uid = (uint)e.Uid,
                Gid = (uint)e.Gid,
                ModTime = DateTimeOffset.FromUnixTimeSeconds(mtime).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
                DevMajor = e.Type is EntryType.CharDevice or EntryType.BlockDevice ? e.DevMajor : 0,
                DevMinor = e.Type is EntryType.CharDevice or EntryType.BlockDevice ? e.DevMinor : 0,
                Xattrs = xattrs,
            };
        }

        /// <summary>
        /// A name as JSON text: its bytes when they are UTF-8, else with each stray byte as U+FFFD,
        /// which is what Go's encoder writes for such a string (the exact bytes travel in the tar
        /// and the tar-split; the TOC's names only label entries).
        /// </summary>
        private static string JsonText(string name)
        {
            var bytes = FileNames.Encode(name);
            return Utf8.IsValid(bytes) ? name : Encoding.UTF8.GetString(bytes);
        }

        private void Uncompressed(ReadOnlySpan<byte> bytes)
        {
            _diffId.AppendData(bytes);
            _uncompressed += bytes.Length;
        }

        private void Emit(ReadOnlySpan<byte> bytes)
        {
            _blob.Write(bytes);
            _offset += bytes.Length;
        }

        private void FlushPending()
        {
            if (_pending.Length == 0) return;
            Emit(_frames.Compress(_pending.GetBuffer().AsSpan(0, (int)_pending.Length)));
            _pending.SetLength(0);
        }

        public EncodedLayer Finish()
        {
            // The last file's padding and the two zero blocks that end a tar, in one last frame.
            var end = new byte[_padding + 1024];
            Uncompressed(end);
            _pending.Write(end);
            _tarSplit.Segment(end);
            FlushPending();

            var (tarSplit, tarSplitUncompressed) = _tarSplit.Finish();
            _toc.TarSplitDigest = Digest.Sha256(tarSplit);
            var tocJson = ZstdChunked.SerializeToc(_toc);
            var tocCompressed = _frames.Compress(tocJson).ToArray();
            var toc = new ZstdChunked.Position(_offset + ZstdChunked.SkippableHeaderSize, tocCompressed.Length, tocJson.Length);
            ZstdChunked.WriteSkippableFrame(_blob, tocCompressed);
            _offset += ZstdChunked.SkippableHeaderSize + tocCompressed.Length;
            var split = new ZstdChunked.Position(_offset + ZstdChunked.SkippableHeaderSize, tarSplit.Length, tarSplitUncompressed);
            ZstdChunked.WriteSkippableFrame(_blob, tarSplit);
            _offset += ZstdChunked.SkippableHeaderSize + tarSplit.Length;
            ZstdChunked.WriteSkippableFrame(_blob, ZstdChunked.Footer(toc, split));
            _offset += ZstdChunked.SkippableHeaderSize + ZstdChunked.FooterSize;

            var diffId = "sha256:" + Convert.ToHexStringLower(_diffId.GetCurrentHash());
            var annotations = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                [ZstdChunked.ManifestChecksumAnnotation] = Digest.Sha256(tocCompressed),
                [ZstdChunked.ManifestPositionAnnotation] = $"{toc.Offset}:{toc.Length}:{toc.UncompressedLength}:{ZstdChunked.ManifestTypeCrfs}",
                [ZstdChunked.TarSplitPositionAnnotation] = $"{split.Offset}:{split.Length}:{split.UncompressedLength}",
            };
            annotations[ZstdChunked.LegacyManifestChecksumAnnotation] = annotations[ZstdChunked.ManifestChecksumAnnotation];
            annotations[ZstdChunked.LegacyManifestPositionAnnotation] = annotations[ZstdChunked.ManifestPositionAnnotation];
            Dispose();
            return new EncodedLayer(diffId, _uncompressed, annotations);
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _tar.Dispose();
            _frames.Dispose();
            _diffId.Dispose();
            _tarSplit.Dispose();
            ArrayPool<byte>.Shared.Return(_piece);
        }
    }

    /// <summary>
    /// tar-split's JSON lines (vbatts/tar-split's storage.Entry, one object per line, positions
    /// counting from 0): type 2 segments carry raw header and padding bytes (base64), type 1
    /// files carry the name, size and crc64 (ISO) of the content; a zstd stream of them is what
    /// containers/storage stores to rebuild the exact tar of a partially pulled layer.
    /// </summary>
    private sealed class TarSplitWriter : IDisposable
    {
        private readonly MemoryStream _compressed = new();
        private readonly Stream _zstd;
        private readonly Utf8JsonWriter _json;
        private long _uncompressed;
        private int _position;
        private readonly CountingSink _sink;

        public TarSplitWriter(int level)
        {
            _zstd = Zstd.Compress(_compressed, level);
            _sink = new CountingSink(_zstd, n => _uncompressed += n);
            _json = new Utf8JsonWriter(_sink, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true });
        }

        public void Segment(ReadOnlySpan<byte> raw)
        {
            _json.WriteStartObject();
            _json.WriteNumber("type", 2);
            _json.WriteBase64String("payload", raw);
            End();
        }

        public void File(byte[] name, long size, ulong? crc)
        {
            _json.WriteStartObject();
            _json.WriteNumber("type", 1);
            if (Utf8.IsValid(name)) _json.WriteString("name", Encoding.UTF8.GetString(name));
            else _json.WriteBase64String("name_raw", name);
            if (size != 0) _json.WriteNumber("size", size);
            if (crc is { } c)
            {
                Span<byte> be = stackalloc byte[8];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(be, c);
                _json.WriteBase64String("payload", be);
            }
            else _json.WriteNull("payload");
            End();
        }

        private void End()
        {
            _json.WriteNumber("position", _position++);
            _json.WriteEndObject();
            _json.Flush();
            _sink.WriteByte((byte)'\n');
            _json.Reset();
        }

        public (byte[] Compressed, long Uncompressed) Finish()
        {
            _json.Flush();
            _zstd.Dispose();
            return (_compressed.ToArray(), _uncompressed);
        }

        public void Dispose()
        {
            _json.Dispose();
            _zstd.Dispose();
        }

        private sealed class CountingSink(Stream inner, Action<int> counted) : IO.WriteOnlyStream
        {
            public override void Write(ReadOnlySpan<byte> buffer)
            {
                inner.Write(buffer);
                counted(buffer.Length);
            }
        }
    }
}

/// <summary>
/// Where a large file's content is cut into zstd:chunked frames: content-defined, so an edit
/// moves only the cuts near it and the pieces around keep their bytes (and their frames).
/// Files of at most <see cref="MaxPiece"/> bytes are one piece. Larger ones are cut with a gear
/// rolling hash (as in FastCDC: h = (h &lt;&lt; 1) + G[byte], so h depends on the last 64 bytes
/// only) started afresh at each piece; a cut goes after the first byte at which the top 16 bits
/// of h are zero, but no earlier than <see cref="MinPiece"/> bytes into the piece and no later
/// than <see cref="MaxPiece"/>: pieces average about 96 KiB, near containers/storage's 64 KiB,
/// big enough that zstd loses little ratio to the frame boundaries. G is 256 values of
/// SplitMix64 from the seed in <see cref="Id"/>; changing any of this changes every frame, so
/// <see cref="Id"/> is part of the layer cache's key.
/// </summary>
public static class ContentPieces
{
    public const int MinPiece = 32 << 10;
    public const int MaxPiece = 256 << 10;
    private const ulong CutMask = 0xFFFF_0000_0000_0000;
    private const ulong Seed = 0x7472_6565_6368_756E; // "treechun"
    public static string Id => "gear64-top16-32k-256k-" + Seed.ToString("x16");

    private static readonly ulong[] Gear = MakeGear();

    private static ulong[] MakeGear()
    {
        var g = new ulong[256];
        ulong state = Seed;
        for (int i = 0; i < 256; i++)
        {
            ulong z = state += 0x9E3779B97F4A7C15;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            g[i] = z ^ (z >> 31);
        }
        return g;
    }

    /// <summary>
    /// The length of the next piece at the start of <paramref name="data"/> (which holds
    /// <see cref="MaxPiece"/> bytes, or less only when that is the rest of the file).
    /// </summary>
    public static int Cut(ReadOnlySpan<byte> data)
    {
        if (data.Length <= MinPiece) return data.Length;
        ulong h = 0;
        int limit = Math.Min(data.Length, MaxPiece);
        for (int i = 0; i < limit; i++)
        {
            h = (h << 1) + Gear[data[i]];
            if (i + 1 >= MinPiece && (h & CutMask) == 0) return i + 1;
        }
        return limit;
    }
}
