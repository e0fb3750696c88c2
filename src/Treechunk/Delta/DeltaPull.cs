using System.Diagnostics;
using Treechunk.IO;
using Treechunk.Oci;

namespace Treechunk.Delta;

/// <summary>A layer rebuilt from a delta: the delta blob and the bytes fetched for it.</summary>
public sealed record DeltaLayerResult(string Digest, long Size, string Delta, long BytesFetched, double Seconds);

/// <summary>A layer a delta was found for but not used, and why; it was then fetched without it.</summary>
public sealed record DeltaFallback(string Digest, string Reason, long BytesFetched);

/// <summary>
/// Pulls into an OCI layout that holds an older image: the new image's delta artifact (found
/// beside it in the source, <see cref="DeltaStore"/>) names, for each layer, the old blobs it
/// starts from; when the layout has them, their tars (checked against their diff_ids) become the
/// prefix, the delta is fetched and applied, the tar checked against the layer's diff_id and
/// compressed again as the layer's compression annotation says, and the blob is kept only when
/// its digest is the layer's. Anything else (a blob the layout lacks, a damaged delta, a result
/// with another digest) is reported naming the layer and the copier fetches it as it would have
/// (partially, or whole), so a delta can save bytes and never break a pull.
/// </summary>
public sealed class DeltaPull : IBlobRebuilder
{
    private readonly Dictionary<string, DeltaEntry> _byTarget = new(StringComparer.Ordinal);
    private readonly string _layoutRoot;
    private readonly Action<string> _warn;
    private readonly List<DeltaLayerResult> _results = [];
    private readonly List<DeltaFallback> _fallbacks = [];

    private DeltaPull(string layoutRoot, Action<string> warn)
    {
        _layoutRoot = layoutRoot;
        _warn = warn;
    }

    /// <summary>Deltas found for the image (or each image of an index).</summary>
    public int Deltas => _byTarget.Count;

    /// <summary>Where the deltas were found (tags or referrers), one per manifest.</summary>
    public List<string> Origins { get; } = [];

    public IReadOnlyList<DeltaLayerResult> Results { get { lock (_results) return [.. _results]; } }
    public IReadOnlyList<DeltaFallback> Fallbacks { get { lock (_fallbacks) return [.. _fallbacks]; } }

    /// <summary>
    /// Looks up the delta artifacts of <paramref name="top"/> (an image, or each image of an
    /// index) in <paramref name="source"/>; a broken artifact is reported and ignored.
    /// </summary>
    public static DeltaPull For(IImageSource source, Descriptor top, string layoutRoot, Action<string>? log, Action<string> warn)
    {
        var pull = new DeltaPull(layoutRoot, warn);
        var manifests = new List<string>();
        if (MediaTypes.IsIndex(top.MediaType))
            manifests.AddRange(OciJson.Deserialize<ImageIndex>(source.ReadManifest(top), $"index {top.Digest}").Manifests
                .Where(m => MediaTypes.IsManifest(m.MediaType)).Select(m => m.Digest));
        else manifests.Add(top.Digest);
        foreach (var digest in manifests)
        {
            try
            {
                if (DeltaStore.Find(source, digest, log) is not { } found) continue;
                pull.Origins.Add(found.Origin);
                foreach (var e in found.Entries) pull._byTarget.TryAdd(e.ToDigest, e);
                log?.Invoke($"deltas: {found.Entries.Count} for {digest} at {found.Origin}");
            }
            catch (TreechunkException e)
            {
                warn($"the deltas of {digest} are not used: {e.Message}");
            }
        }
        return pull;
    }

    public BlobTransfer? TryCopy(IImageSource source, Descriptor blob, IImageDestination destination, Action<long>? progress, Action<string>? log)
    {
        if (!_byTarget.TryGetValue(blob.Digest, out var entry)) return null;
        long fetched = 0;
        string? Problem()
        {
            if (LayerCompressionParams.Of(blob) is not { } p) return $"it has no {Annotations.Compression} annotation";
            if (p.WhyNotReproducible() is { } why) return why;
            foreach (var f in entry.From)
                if (!File.Exists(OciLayout.BlobPath(_layoutRoot, f.Digest)))
                    return $"the layout does not have old layer {f.Digest}, which its delta starts from";
            return null;
        }
        var clock = Stopwatch.StartNew();
        try
        {
            if (Problem() is { } problem) return Fallback(blob, problem, 0);
            var compression = LayerCompressionParams.Of(blob)!;
            using var scratch = TempDirectory.Create("delta", _layoutRoot);
            var prefixPath = Path.Join(scratch.Path, "prefix.tar");
            WritePrefix(entry, prefixPath);

            using var prefix = MappedFile.Open(prefixPath);
            var delta = new VerifyingStream(source.OpenBlob(entry.Blob), entry.Blob, $"delta {entry.Blob.Digest}");
            try
            {
                using var writer = destination.CreateBlob();
                string tarDigest, blobDigest;
                long tarSize, blobSize;
                using (var blobHash = new HashingStream(writer.Stream, leaveOpen: true))
                {
                    using (var tarHash = new HashingStream(compression.Compress(blobHash)))
                    using (var tar = ZstdPatch.Apply(delta, prefix))
                    {
                        var buffer = new byte[1 << 17];
                        int n;
                        while ((n = tar.Read(buffer)) > 0)
                        {
                            if (tarHash.BytesWritten + n > entry.ToTarSize) throw new TreechunkException($"its delta rebuilds more than the {entry.ToTarSize} bytes of its tar");
                            tarHash.Write(buffer.AsSpan(0, n));
                            progress?.Invoke(n);
                        }
                        tarDigest = tarHash.Digest();
                        tarSize = tarHash.BytesWritten;
                    }
                    blobDigest = blobHash.Digest();
                    blobSize = blobHash.BytesWritten;
                }
                fetched = delta.BytesRead;
                if (tarDigest != entry.ToDiffId || tarSize != entry.ToTarSize)
                    return Fallback(blob, $"its delta rebuilt a tar with digest {tarDigest} ({tarSize} bytes), not its diff_id {entry.ToDiffId}", fetched);
                if (blobDigest != blob.Digest || blobSize != blob.Size)
                    return Fallback(blob, $"its rebuilt tar compressed again ({compression}) is {blobDigest} ({blobSize} bytes), not the layer", fetched);
                writer.Commit(blob.Digest);
            }
            finally
            {
                fetched = delta.BytesRead;
                delta.Dispose();
            }
            var result = new DeltaLayerResult(blob.Digest, blob.Size, entry.Blob.Digest, fetched, Math.Round(clock.Elapsed.TotalSeconds, 3));
            lock (_results) _results.Add(result);
            log?.Invoke($"delta: layer {blob.Digest} ({blob.Size} bytes) rebuilt from a {fetched}-byte delta and {entry.From.Count} local layer(s)");
            return new BlobTransfer(blob.Digest, blob.Size, "delta", fetched);
        }
        catch (TreechunkException e)
        {
            return Fallback(blob, e.Message, fetched);
        }
        catch (IOException e)
        {
            return Fallback(blob, e.Message, fetched);
        }
    }

    private BlobTransfer? Fallback(Descriptor blob, string reason, long fetched)
    {
        lock (_fallbacks) _fallbacks.Add(new DeltaFallback(blob.Digest, reason, fetched));
        _warn($"layer {blob.Digest}: not rebuilt from its delta ({reason}); fetching it without");
        return null;
    }

    /// <summary>The old layers' tars end to end, each checked against its blob digest and diff_id.</summary>
    private void WritePrefix(DeltaEntry entry, string path)
    {
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        foreach (var f in entry.From)
        {
            var blobPath = OciLayout.BlobPath(_layoutRoot, f.Digest);
            var d = new Descriptor { MediaType = f.MediaType, Digest = f.Digest, Size = new FileInfo(blobPath).Length };
            using var verifying = new VerifyingStream(File.OpenRead(blobPath), d, $"local layer {f.Digest}");
            using var hash = new HashingStream(file, leaveOpen: true);
            try
            {
                using (var tar = LayerCompression.Decompress(verifying, f.MediaType, leaveOpen: true)) tar.CopyTo(hash, 1 << 17);
                verifying.CopyTo(Stream.Null);
            }
            catch (Exception e) when (e is InvalidDataException or ZstdSharp.ZstdException)
            {
                throw new TreechunkException($"local layer {f.Digest} does not decompress: {e.Message}");
            }
            if (hash.Digest() != f.DiffId)
                throw new TreechunkException($"local layer {f.Digest} decompresses to {hash.Digest()}, not the diff_id {f.DiffId} its delta was made from");
        }
    }
}
