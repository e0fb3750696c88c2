using System.Security.Cryptography;
using System.Text.Json;

namespace Treechunk.Oci;

/// <summary>What a partial pull of one layer cost.</summary>
/// <param name="BytesFetched">Body bytes read from the source (TOC and trailers, header frames it could not rebuild, content frames it lacks).</param>
/// <param name="BytesLocal">Content-frame bytes copied from blobs the destination already had.</param>
/// <param name="BytesRebuilt">Header-frame bytes compressed here again from the tar-split.</param>
/// <param name="Requests">Range requests sent.</param>
public sealed record PartialLayerResult(string Digest, long Size, long BytesFetched, long BytesLocal, long BytesRebuilt, int Requests);

/// <summary>
/// Partial pulls of zstd:chunked layers into an OCI layout that already holds other images: the
/// layer's table of contents (one Range request for everything after the last file frame: TOC,
/// tar-split and footer) says where each file's frames lie and what their content hashes to;
/// frames whose content digest a local zstd:chunked layer also has (same compressed length) are
/// copied from that blob, the tar headers between files are compressed again from the tar-split
/// when the level that made the layer reproduces its first header frame, and the rest is fetched
/// in coalesced Range requests. The blob is rebuilt in order into a temp file and hashed on the
/// way; it is kept only when its digest is the descriptor's, so a wrong range, a stale local
/// frame or a lying TOC all end in one error naming the layer and nothing kept.
/// </summary>
public sealed class ZstdChunkedPull
{
    /// <summary>
    /// Two ranges to fetch with at most this many bytes between them become one request: a Range
    /// request costs a round trip and half a kilobyte of headers each way, about what this many
    /// bytes cost on a slow link, while header frames (~100-200 bytes) between changed files
    /// would otherwise each cost a request of their own.
    /// </summary>
    public const long MergeGap = 4096;

    private readonly Dictionary<string, LocalFrame> _local = new(StringComparer.Ordinal);
    private readonly List<PartialLayerResult> _results = [];
    private readonly HashSet<string> _indexedLayers = new(StringComparer.Ordinal);

    /// <summary>A content frame the client has: in a blob file, or (for estimates) only known to be there.</summary>
    private readonly record struct LocalFrame(string? BlobPath, long Offset, long Length);

    /// <summary>How many content frames of local layers are known.</summary>
    public int LocalFrames => _local.Count;

    public IReadOnlyList<PartialLayerResult> Results
    {
        get { lock (_results) return [.. _results]; }
    }

    /// <summary>
    /// Indexes the content frames of every zstd:chunked layer of every image in the layout (a
    /// layer whose TOC cannot be read is skipped: it only costs reuse).
    /// </summary>
    public static ZstdChunkedPull ForLayout(OciLayoutSource layout, Action<string>? log = null)
    {
        var pull = new ZstdChunkedPull();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Visit(Descriptor d, int depth)
        {
            if (depth > 4 || !seen.Add(d.Digest) || !File.Exists(OciLayout.BlobPath(layout.Root, d.Digest))) return;
            try
            {
                var raw = layout.ReadManifest(d);
                if (MediaTypes.IsIndex(d.MediaType))
                    foreach (var child in OciJson.Deserialize<ImageIndex>(raw, d.Digest).Manifests) Visit(child, depth + 1);
                else if (MediaTypes.IsManifest(d.MediaType))
                    foreach (var layer in OciJson.Deserialize<ImageManifest>(raw, d.Digest).Layers.Where(ZstdChunked.IsChunked))
                        pull.IndexLocalLayer(layout, layer, log);
            }
            catch (TreechunkException e)
            {
                log?.Invoke($"partial pull: not indexing {d.Digest} ({e.Message})");
            }
        }
        foreach (var m in layout.Index.Manifests) Visit(m, 0);
        log?.Invoke($"partial pull: {pull.LocalFrames} content frames indexed in {layout.Name}");
        return pull;
    }

    /// <summary>
    /// Indexes the content frames of an image's zstd:chunked layers as frames a client holding that
    /// image has: enough to <see cref="Estimate"/> a pull, not to <see cref="Copy"/> one (the bytes
    /// stay wherever the image is).
    /// </summary>
    public static ZstdChunkedPull ForImage(Image image, Action<string>? log = null)
    {
        var pull = new ZstdChunkedPull();
        foreach (var layer in image.Manifest.Layers.Where(ZstdChunked.IsChunked))
            pull.IndexLayer(image.Source, layer, null, log);
        return pull;
    }

    private void IndexLocalLayer(OciLayoutSource layout, Descriptor layer, Action<string>? log)
    {
        var path = OciLayout.BlobPath(layout.Root, layer.Digest);
        if (!File.Exists(path) || new FileInfo(path).Length != layer.Size) return;
        IndexLayer(layout, layer, path, log);
    }

    private void IndexLayer(IImageSource source, Descriptor layer, string? blobPath, Action<string>? log)
    {
        if (!_indexedLayers.Add(layer.Digest)) return;
        try
        {
            var (position, checksum) = ZstdChunked.TocLocation(layer);
            var compressed = ReadExactly(source.OpenBlobRange(layer, position.Offset, position.Length), position.Length);
            if (Digest.Sha256(compressed) != checksum) throw new TreechunkException("its TOC does not match the checksum annotation");
            var toc = ZstdChunked.ParseToc(compressed, position, $"layer {layer.Digest}");
            foreach (var f in ZstdChunked.ContentFrames(toc, position.Offset - ZstdChunked.SkippableHeaderSize, $"layer {layer.Digest}"))
                _local.TryAdd(f.ContentDigest, new LocalFrame(blobPath, f.Offset, f.Length));
        }
        catch (TreechunkException e)
        {
            log?.Invoke($"partial pull: not indexing layer {layer.Digest} ({e.Message})");
        }
    }

    /// <summary>One stretch of the blob being rebuilt, in blob order.</summary>
    private sealed record Piece(long Offset, long Length)
    {
        public LocalFrame? Local { get; init; }
        /// <summary>Bytes already here (fetched with the trailer, or compressed again from the tar-split).</summary>
        public byte[]? Bytes { get; init; }
        public bool Rebuilt { get; init; }
        public bool Remote => Local == null && Bytes == null;
    }

    /// <summary>
    /// How a layer would be rebuilt: the stretches of the blob in order (each fetched, local or
    /// already here) and what reading the table of contents cost. Planning reads the trailer and
    /// the first header frame from the source; <see cref="Copy"/> and <see cref="Estimate"/>
    /// share it, so an estimate is what a pull fetches, to the byte.
    /// </summary>
    private sealed record LayerPlan(List<Piece> Pieces, long Fetched, int Requests);

    private LayerPlan Plan(IImageSource source, Descriptor layer, Action<string>? log)
    {
        string what = $"layer {layer.Digest}";
        long fetched = 0;
        int requests = 0;
        byte[] Fetch(long offset, long length)
        {
            requests++;
            try
            {
                var bytes = ReadExactly(source.OpenBlobRange(layer, offset, length), length);
                fetched += length;
                return bytes;
            }
            catch (TreechunkException e) when (!e.Message.StartsWith(what, StringComparison.Ordinal))
            {
                throw new TreechunkException($"{what}: {e.Message}", e.ExitCode);
            }
        }

        // 1. Everything after the last file frame in one request: TOC, tar-split, footer.
        var (tocPosition, checksum) = ZstdChunked.TocLocation(layer);
        long trailerStart = tocPosition.Offset - ZstdChunked.SkippableHeaderSize;
        if (trailerStart < 0 || layer.Size - trailerStart > ZstdChunked.MaxTocSize)
            throw new TreechunkException($"{what}: the table of contents is not where a zstd:chunked layer has it", ExitCodes.VerificationFailed);
        var trailer = Fetch(trailerStart, layer.Size - trailerStart);
        var tocBytes = trailer.AsSpan(ZstdChunked.SkippableHeaderSize, (int)tocPosition.Length).ToArray();
        if (Digest.Sha256(tocBytes) != checksum)
            throw new TreechunkException($"{what}: the table of contents from {source.Name} does not match its manifest-checksum annotation; nothing was kept", ExitCodes.VerificationFailed);
        var toc = ZstdChunked.ParseToc(tocBytes, tocPosition, what);
        var frames = ZstdChunked.ContentFrames(toc, trailerStart, what);

        // 2. The blob as stretches: content frames (local or remote) and the header frames between them.
        var pieces = new List<Piece>();
        var gaps = new List<int>();
        long at = 0;
        foreach (var f in frames)
        {
            if (f.Offset > at)
            {
                gaps.Add(pieces.Count);
                pieces.Add(new Piece(at, f.Offset - at));
            }
            pieces.Add(_local.TryGetValue(f.ContentDigest, out var have) && have.Length == f.Length
                ? new Piece(f.Offset, f.Length) { Local = have }
                : new Piece(f.Offset, f.Length));
            at = f.End;
        }
        if (trailerStart > at)
        {
            gaps.Add(pieces.Count);
            pieces.Add(new Piece(at, trailerStart - at));
        }
        pieces.Add(new Piece(trailerStart, trailer.Length) { Bytes = trailer });

        // 3. Header frames again from the tar-split, at the level that reproduces the first one.
        if (gaps.Count > 1 && pieces.Any(p => p.Local != null))
            RebuildHeaderFrames(pieces, gaps, trailer, trailerStart, toc, what, Fetch, log);

        return new LayerPlan(Coalesce(pieces), fetched, requests);
    }

    /// <summary>
    /// What a partial pull of <paramref name="layer"/> would cost a client holding the frames
    /// indexed here: the trailer and first header frame are read (as a pull reads them), the rest
    /// is counted, nothing is written.
    /// </summary>
    public PartialLayerResult Estimate(IImageSource source, Descriptor layer, Action<string>? log = null)
    {
        var plan = Plan(source, layer, log);
        long fetched = plan.Fetched, local = 0, rebuilt = 0;
        int requests = plan.Requests;
        foreach (var p in plan.Pieces)
        {
            if (p.Remote) { fetched += p.Length; requests++; }
            else if (p.Local != null) local += p.Length;
            else if (p.Rebuilt) rebuilt += p.Length;
        }
        return new PartialLayerResult(layer.Digest, layer.Size, fetched, local, rebuilt, requests);
    }

    /// <summary>
    /// Rebuilds the zstd:chunked layer <paramref name="layer"/> of <paramref name="source"/> into
    /// <paramref name="destination"/> from local frames and ranges; throws naming the layer when
    /// the result is not the blob the descriptor names (nothing is kept then).
    /// </summary>
    public PartialLayerResult Copy(IImageSource source, Descriptor layer, IImageDestination destination, Action<long>? progress = null, Action<string>? log = null)
    {
        string what = $"layer {layer.Digest}";
        var (plan, fetched, requests) = Plan(source, layer, log);

        // Fetch what is left in few requests, copy the rest, hash everything on the way.
        long local = 0, rebuilt = 0;
        var handles = new Dictionary<string, Microsoft.Win32.SafeHandles.SafeFileHandle>(StringComparer.Ordinal);
        try
        {
            using (var blob = destination.CreateBlob())
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var buffer = new byte[1 << 17];
                long written = 0;
                void Write(ReadOnlySpan<byte> bytes)
                {
                    hash.AppendData(bytes);
                    blob.Stream.Write(bytes);
                    written += bytes.Length;
                    progress?.Invoke(bytes.Length);
                }
                void CopyFrom(Stream s, long length)
                {
                    using (s)
                        for (long left = length; left > 0;)
                        {
                            int n = s.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                            if (n == 0) throw new TreechunkException($"{what}: a range ended {left} bytes early", ExitCodes.VerificationFailed);
                            Write(buffer.AsSpan(0, n));
                            left -= n;
                        }
                }
                foreach (var p in plan)
                {
                    if (p.Bytes != null)
                    {
                        Write(p.Bytes);
                        if (p.Rebuilt) rebuilt += p.Length;
                    }
                    else if (p.Local is { } l)
                    {
                        var path = l.BlobPath ?? throw new InvalidOperationException("an index made by ForImage estimates pulls; copying needs ForLayout");
                        // One handle per local blob for the whole layer: a layer can take thousands of frames from one blob.
                        if (!handles.TryGetValue(path, out var handle))
                            handles[path] = handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
                        for (long done = 0; done < l.Length;)
                        {
                            int n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, l.Length - done)), l.Offset + done);
                            if (n == 0) throw new TreechunkException($"{what}: local blob {path} is shorter than its table of contents says", ExitCodes.VerificationFailed);
                            Write(buffer.AsSpan(0, n));
                            done += n;
                        }
                        local += l.Length;
                    }
                    else
                    {
                        requests++;
                        var counted = new CountingReadStream(source.OpenBlobRange(layer, p.Offset, p.Length));
                        try { CopyFrom(counted, p.Length); }
                        finally { fetched += counted.Count; }
                    }
                }
                var digest = "sha256:" + Convert.ToHexStringLower(hash.GetCurrentHash());
                if (written != layer.Size || digest != layer.Digest)
                    throw new TreechunkException($"{what}: the blob rebuilt from {requests} range requests to {source.Name} and {local} local bytes is {written} bytes with digest {digest}, not the layer; nothing was kept (--no-partial downloads it whole)", ExitCodes.VerificationFailed);
                blob.Commit(layer.Digest);
            }
        }
        finally
        {
            foreach (var h in handles.Values) h.Dispose();
        }
        var result = new PartialLayerResult(layer.Digest, layer.Size, fetched, local, rebuilt, requests);
        log?.Invoke($"partial pull of {layer.Digest}: {fetched} of {layer.Size} bytes fetched in {requests} requests, {local} copied from local frames, {rebuilt} header bytes compressed again");
        lock (_results) _results.Add(result);
        return result;
    }

    /// <summary>
    /// Replaces the header-frame stretches with frames compressed here from the tar-split's raw
    /// header bytes, when the layer's first header frame (fetched) is what our compressor makes
    /// of those bytes at some level: that is the level (and encoder) the layer was made with.
    /// Each rebuilt frame must also have the stretch's exact length; one that has not stays remote.
    /// </summary>
    private static void RebuildHeaderFrames(List<Piece> pieces, List<int> gaps, byte[] trailer, long trailerStart, ZstdChunked.Toc toc,
        string what, Func<long, long, byte[]> fetch, Action<string>? log)
    {
        // Only the current layout has a tar-split (and a 64-byte footer saying where): older
        // writers' layers keep their header frames remote.
        if (toc.TarSplitDigest is not { } splitDigest || trailer.Length < ZstdChunked.FooterSize + ZstdChunked.SkippableHeaderSize) return;
        var frameHeader = trailer.AsSpan(trailer.Length - ZstdChunked.FooterSize - ZstdChunked.SkippableHeaderSize, ZstdChunked.SkippableHeaderSize);
        if (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(frameHeader[4..]) != ZstdChunked.FooterSize) return;
        var footer = trailer.AsSpan(trailer.Length - ZstdChunked.FooterSize);
        if (!footer[56..].SequenceEqual(ZstdChunked.FooterMagic)) return;
        long splitOffset = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(footer[32..]);
        long splitLength = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(footer[40..]);
        if (splitOffset < trailerStart || splitOffset + splitLength > trailerStart + trailer.Length) return;
        var split = trailer.AsSpan((int)(splitOffset - trailerStart), (int)splitLength).ToArray();
        if (Digest.Sha256(split) != splitDigest)
            throw new TreechunkException($"{what}: the tar-split does not match the digest its table of contents gives", ExitCodes.VerificationFailed);
        var contents = HeaderFrameContents(split);
        if (contents == null || contents.Count != gaps.Count)
        {
            log?.Invoke($"{what}: the tar-split does not line up with the table of contents; header frames are fetched");
            return;
        }
        var first = pieces[gaps[0]];
        var fetched = fetch(first.Offset, first.Length);
        pieces[gaps[0]] = first with { Bytes = fetched };
        int? level = null;
        foreach (var candidate in new[] { 3 }.Concat(Enumerable.Range(1, 22).Where(l => l != 3)))
        {
            using var z = new ZstdFrameCompressor(candidate);
            if (z.Compress(contents[0]).SequenceEqual(fetched)) { level = candidate; break; }
        }
        if (level == null)
        {
            log?.Invoke($"{what}: its header frames are not what zstd 1.5.7 makes at any level; they are fetched");
            return;
        }
        using var frames = new ZstdFrameCompressor(level.Value);
        for (int g = 1; g < gaps.Count; g++)
        {
            var gap = pieces[gaps[g]];
            var frame = frames.Compress(contents[g]);
            if (frame.Length == gap.Length) pieces[gaps[g]] = gap with { Bytes = frame.ToArray(), Rebuilt = true };
        }
    }

    /// <summary>
    /// The uncompressed bytes of each header frame, from tar-split's lines: the segments between
    /// two files with content (and before the first, and after the last), as zstd:chunked writers
    /// frame them. Null when the tar-split is not JSON lines of the expected shape.
    /// </summary>
    private static List<byte[]>? HeaderFrameContents(byte[] compressedSplit)
    {
        var result = new List<byte[]>();
        var pending = new MemoryStream();
        try
        {
            using var z = new ZstdSharp.DecompressionStream(new MemoryStream(compressedSplit));
            using var reader = new StreamReader(z, System.Text.Encoding.UTF8);
            while (reader.ReadLine() is { } line)
            {
                if (line.Length == 0) continue;
                using var doc = JsonDocument.Parse(line);
                var e = doc.RootElement;
                int type = e.GetProperty("type").GetInt32();
                if (type == 2)
                {
                    if (e.TryGetProperty("payload", out var p) && p.ValueKind == JsonValueKind.String) pending.Write(p.GetBytesFromBase64());
                }
                else if (type == 1 && e.TryGetProperty("size", out var size) && size.GetInt64() > 0)
                {
                    result.Add(pending.ToArray());
                    pending.SetLength(0);
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or KeyNotFoundException or IOException or ZstdSharp.ZstdException)
        {
            return null;
        }
        result.Add(pending.ToArray());
        return result;
    }

    /// <summary>Remote stretches joined: adjacent ones, and across a local stretch of at most <see cref="MergeGap"/> bytes.</summary>
    private static List<Piece> Coalesce(List<Piece> pieces)
    {
        var result = new List<Piece>();
        for (int i = 0; i < pieces.Count; i++)
        {
            var p = pieces[i];
            if (!p.Remote)
            {
                result.Add(p);
                continue;
            }
            long start = p.Offset, end = p.Offset + p.Length;
            int j = i + 1;
            while (j < pieces.Count)
            {
                if (pieces[j].Remote) { end = pieces[j].Offset + pieces[j].Length; j++; continue; }
                if (j + 1 < pieces.Count && pieces[j + 1].Remote && pieces[j].Length <= MergeGap)
                {
                    end = pieces[j + 1].Offset + pieces[j + 1].Length;
                    j += 2;
                    continue;
                }
                break;
            }
            result.Add(new Piece(start, end - start));
            i = j - 1;
        }
        return result;
    }

    private static byte[] ReadExactly(Stream s, long length)
    {
        using (s)
        {
            var bytes = new byte[length];
            try
            {
                s.ReadExactly(bytes);
            }
            catch (EndOfStreamException)
            {
                throw new TreechunkException($"a range of {length} bytes ended early", ExitCodes.VerificationFailed);
            }
            return bytes;
        }
    }

    private sealed class CountingReadStream(Stream inner) : IO.ReadOnlyStream
    {
        public long Count { get; private set; }

        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            Count += n;
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
