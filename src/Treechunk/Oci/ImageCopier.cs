namespace Treechunk.Oci;

public sealed record CopyResult(Descriptor Descriptor, int BlobsCopied, int BlobsSkipped, long BytesCopied, int Manifests)
{
    /// <summary>How each blob that was not already there arrived, and what that fetched.</summary>
    public IReadOnlyList<BlobTransfer> Transfers { get; init; } = [];
}

/// <summary>How one blob arrived: <c>whole</c> (its bytes), <c>partial</c> (zstd:chunked frames), <c>delta</c> (rebuilt from a delta), with the bytes fetched for it.</summary>
public sealed record BlobTransfer(string Digest, long Size, string Method, long BytesFetched);

/// <summary>
/// Makes a blob in the destination from something other than its bytes (a delta against blobs
/// the destination has). It returns null when it does not apply or did not work out, having
/// said why; the copier then fetches the blob as usual, so a rebuilder can only save bytes.
/// </summary>
public interface IBlobRebuilder
{
    BlobTransfer? TryCopy(IImageSource source, Descriptor blob, IImageDestination destination, Action<long>? progress, Action<string>? log);
}

/// <summary>Receives the progress of a copy; the CLI draws bars, tests ignore it.</summary>
public interface ITransferProgress
{
    void BlobStarted(Descriptor blob);
    void BlobProgress(Descriptor blob, long bytes);
    /// <param name="skipped">The destination had it already.</param>
    void BlobDone(Descriptor blob, bool skipped);
}

/// <summary>
/// Moves an image, or a whole index with every manifest it lists, from any source to any
/// destination: blobs the destination has are skipped, the others go in parallel and are
/// verified while they stream, manifests and indexes are copied as their stored bytes (so
/// digests are kept) once their blobs are there, and the tag is set last.
/// </summary>
public static class ImageCopier
{
    /// <param name="partial">Rebuilds zstd:chunked layers from the destination's own frames and ranges of the source (see <see cref="ZstdChunkedPull"/>), when it knows local frames.</param>
    public static CopyResult Copy(IImageSource source, Descriptor top, IImageDestination destination, string? tag,
        int parallel = 4, ITransferProgress? progress = null, Action<string>? log = null, ZstdChunkedPull? partial = null, IBlobRebuilder? rebuilder = null)
    {
        var result = CopyContent(source, top, destination, parallel, progress, log, partial, rebuilder);
        destination.Tag(top, tag);
        destination.Commit();
        return result;
    }

    /// <summary>
    /// Copies an image's (or index's) blobs and manifests without tagging or committing, so a
    /// caller can put something of its own on top (an index over several images) and commit once.
    /// </summary>
    /// <param name="rebuilder">Tried first for every blob the destination lacks (deltas); what it does not make is fetched as usual.</param>
    public static CopyResult CopyContent(IImageSource source, Descriptor top, IImageDestination destination,
        int parallel = 4, ITransferProgress? progress = null, Action<string>? log = null, ZstdChunkedPull? partial = null, IBlobRebuilder? rebuilder = null)
    {
        parallel = Math.Max(1, parallel);
        // Each worker blocks in synchronous HTTP, and a blocked SocketsHttpHandler needs pool
        // threads of its own to finish a connect or a read: with only cores-many threads the pool
        // starves and grows by one thread a second or so (a re-push took 1.4 s instead of 0.3).
        ThreadPool.GetMinThreads(out var workers, out var io);
        if (workers < parallel * 2 + Environment.ProcessorCount) ThreadPool.SetMinThreads(parallel * 2 + Environment.ProcessorCount, io);
        var state = new State(source, destination, parallel, progress, log, partial, rebuilder);
        state.CopyManifest(top, 0);
        return new CopyResult(top, state.Copied, state.Skipped, state.Bytes, state.Manifests) { Transfers = state.Transfers.ToList() };
    }

    private sealed class State(IImageSource source, IImageDestination destination, int parallel, ITransferProgress? progress, Action<string>? log, ZstdChunkedPull? partial, IBlobRebuilder? rebuilder)
    {
        private readonly HashSet<string> _done = new(StringComparer.Ordinal);
        public readonly System.Collections.Concurrent.ConcurrentQueue<BlobTransfer> Transfers = new();
        public int Copied, Skipped, Manifests;
        public long Bytes;

        public void CopyManifest(Descriptor d, int depth)
        {
            if (depth > 4) throw new TreechunkException($"{source.Name}: index nesting too deep");
            if (!_done.Add(d.Digest)) return;
            var raw = source.ReadManifest(d);
            if (MediaTypes.IsIndex(d.MediaType))
            {
                var index = OciJson.Deserialize<ImageIndex>(raw, $"index {d.Digest}");
                CopyBlobs(index.Manifests.Where(c => !MediaTypes.IsIndex(c.MediaType) && !MediaTypes.IsManifest(c.MediaType)).ToList());
                foreach (var child in index.Manifests)
                    if (MediaTypes.IsIndex(child.MediaType) || MediaTypes.IsManifest(child.MediaType)) CopyManifest(child, depth + 1);
            }
            else if (MediaTypes.IsManifest(d.MediaType))
            {
                var manifest = OciJson.Deserialize<ImageManifest>(raw, $"manifest {d.Digest}");
                if (destination.HasCompleteImage(d))
                {
                    log?.Invoke($"skip the blobs of {d.Digest} (the destination has the manifest)");
                    foreach (var b in new[] { manifest.Config }.Concat(manifest.Layers).Where(b => _done.Add(b.Digest)))
                    {
                        Skipped++;
                        progress?.BlobStarted(b);
                        progress?.BlobDone(b, skipped: true);
                    }
                }
                else CopyBlobs([manifest.Config, .. manifest.Layers]);
            }
            else throw new TreechunkException($"{source.Name}: {d.Digest} has media type '{d.MediaType}', which is neither a manifest nor an index");
            Manifests++;
            destination.PutManifest(d, raw);
        }

        private void CopyBlobs(List<Descriptor> blobs)
        {
            var todo = new List<Descriptor>();
            foreach (var b in blobs)
            {
                Digest.Hex(b.Digest);
                if (_done.Add(b.Digest)) todo.Add(b);
            }
            // Largest first, so the long transfers start at once and the pool drains evenly.
            todo.Sort((a, b) => b.Size.CompareTo(a.Size));
            Parallel.ForEach(todo, new ParallelOptions { MaxDegreeOfParallelism = parallel }, CopyBlob);
        }

        private void CopyBlob(Descriptor d)
        {
            progress?.BlobStarted(d);
            if (destination.HasBlob(d))
            {
                Interlocked.Increment(ref Skipped);
                log?.Invoke($"skip {d.Digest} (already there)");
                progress?.BlobDone(d, skipped: true);
                return;
            }
            if (rebuilder?.TryCopy(source, d, destination, progress == null ? null : n => progress.BlobProgress(d, n), log) is { } rebuilt)
            {
                Transfers.Enqueue(rebuilt);
                Interlocked.Increment(ref Copied);
                Interlocked.Add(ref Bytes, d.Size);
                progress?.BlobDone(d, skipped: false);
                return;
            }
            if (partial is { LocalFrames: > 0 } && ZstdChunked.IsChunked(d))
            {
                var r = partial.Copy(source, d, destination, progress == null ? null : n => progress.BlobProgress(d, n), log);
                Transfers.Enqueue(new BlobTransfer(d.Digest, d.Size, "partial", r.BytesFetched));
                Interlocked.Increment(ref Copied);
                Interlocked.Add(ref Bytes, d.Size);
                progress?.BlobDone(d, skipped: false);
                return;
            }
            log?.Invoke($"copy {d.Digest} ({d.Size} bytes)");
            var content = BlobContent.FromSource(source, d);
            destination.PutBlob(d, progress == null ? content : content.Observed(n => progress.BlobProgress(d, n)));
            Transfers.Enqueue(new BlobTransfer(d.Digest, d.Size, "whole", d.Size));
            Interlocked.Increment(ref Copied);
            Interlocked.Add(ref Bytes, d.Size);
            progress?.BlobDone(d, skipped: false);
        }
    }
}
