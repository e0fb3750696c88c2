using System.Diagnostics;
using Treechunk.IO;
using Treechunk.Oci;

namespace Treechunk.Delta;

/// <summary>A new layer that got no delta, and why.</summary>
public sealed record DeltaSkip(string Digest, long Size, string Reason);

/// <summary>
/// The deltas from one image to another, made and not yet stored: the artifact manifest and its
/// blobs as files in a scratch directory (removed on dispose).
/// </summary>
public sealed class DeltaSet : IDisposable
{
    private readonly TempDirectory _scratch;

    internal DeltaSet(TempDirectory scratch) => _scratch = scratch;

    public required Descriptor Descriptor { get; init; }
    public required byte[] Raw { get; init; }
    public required List<DeltaEntry> Entries { get; init; }
    public required List<(Descriptor Descriptor, string Path)> Blobs { get; init; }
    public required List<DeltaSkip> Skipped { get; init; }
    /// <summary>Compressed bytes of the new image's layers the old one lacks (each once).</summary>
    public required long NewLayerBytes { get; init; }
    public required double Seconds { get; init; }

    public long DeltaBytes => Entries.Sum(e => e.Blob.Size);

    /// <summary>What a client holding the old image downloads with the deltas: each delta, and each new layer without one whole.</summary>
    public long DownloadBytes => DeltaBytes + Skipped.Sum(s => s.Size);

    public void Dispose() => _scratch.Dispose();
}

/// <summary>
/// Makes the deltas from an old image to a new one: for each layer of the new image that the old
/// one does not have, whose compression is reproducible from its tar, the old layers that hold
/// any of its components (from the layer annotations) are the delta's prefix, concatenated in
/// the old image's order; the delta is the new tar compressed against them (<see cref="ZstdPatch"/>).
/// A delta is kept only when compressing the new tar again gives the layer's blob byte for byte
/// (checked while it is made) and it is smaller than the blob, so every delta a client finds
/// rebuilds its layer. Tars go to a scratch directory (streamed, never whole in memory); each
/// prefix is mapped from there.
/// </summary>
public static class DeltaCreator
{
    public static DeltaSet Create(Image old, Image next, int level = ZstdPatch.DefaultLevel, int parallel = 0, Action<string>? log = null, string? scratchNear = null)
    {
        if (level is < 1 or > 22) throw new TreechunkException($"delta level {level} is out of range (1-22)");
        var clock = Stopwatch.StartNew();
        var scratch = TempDirectory.Create("delta", scratchNear);
        try
        {
            var oldDigests = old.Manifest.Layers.Select(l => l.Digest).ToHashSet(StringComparer.Ordinal);
            var todo = new List<Layer>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var layer in next.Layers)
                if (!oldDigests.Contains(layer.Descriptor.Digest) && seen.Add(layer.Descriptor.Digest)) todo.Add(layer);
            var skipped = new List<DeltaSkip>();
            var work = new List<(Layer New, List<Layer> From)>();
            foreach (var layer in todo)
            {
                if (WhyNot(old, layer) is { } why) skipped.Add(new DeltaSkip(layer.Descriptor.Digest, layer.Descriptor.Size, why));
                else work.Add((layer, Candidates(old, layer)));
            }

            // Old tars, each written once however many deltas use it.
            var oldTars = new Dictionary<string, Lazy<string>>(StringComparer.Ordinal);
            foreach (var l in work.SelectMany(w => w.From))
                oldTars.TryAdd(l.Descriptor.Digest, new Lazy<string>(() => WriteTar(l, scratch.Path), LazyThreadSafetyMode.ExecutionAndPublication));

            var made = new (DeltaEntry? Entry, string? Path, DeltaSkip? Skip)[work.Count];
            var options = new ParallelOptions { MaxDegreeOfParallelism = parallel > 0 ? parallel : Environment.ProcessorCount };
            Parallel.For(0, work.Count, options, i =>
            {
                var (layer, from) = work[i];
                try
                {
                    made[i] = MakeOne(layer, from, from.Select(f => oldTars[f.Descriptor.Digest].Value).ToList(), scratch.Path, level, log);
                }
                catch (TreechunkException e)
                {
                    made[i] = (null, null, new DeltaSkip(layer.Descriptor.Digest, layer.Descriptor.Size, e.Message));
                }
            });
            // Old tars are not needed once the deltas are made.
            foreach (var t in oldTars.Values.Where(t => t.IsValueCreated)) File.Delete(t.Value);

            var entries = new List<DeltaEntry>();
            var blobs = new List<(Descriptor, string)>();
            foreach (var (entry, path, skip) in made)
            {
                if (skip != null) skipped.Add(skip);
                else
                {
                    entries.Add(entry!);
                    blobs.Add((entry!.Blob, path!));
                }
            }
            foreach (var s in skipped) log?.Invoke($"delta: no delta for layer {s.Digest}: {s.Reason}");

            var manifest = new ImageManifest
            {
                MediaType = MediaTypes.ImageManifest,
                ArtifactType = DeltaArtifact.ArtifactType,
                Config = DeltaArtifact.EmptyConfigDescriptor(),
                Layers = entries.Select(e => e.Blob).ToList(),
                Subject = new Descriptor { MediaType = next.Descriptor.MediaType, Digest = next.Descriptor.Digest, Size = next.Descriptor.Size },
                Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal) { [DeltaArtifact.FromImage] = old.Descriptor.Digest },
            };
            var raw = OciJson.Serialize(manifest);
            var descriptor = new Descriptor { MediaType = MediaTypes.ImageManifest, Digest = Digest.Sha256(raw), Size = raw.Length, ArtifactType = DeltaArtifact.ArtifactType };
            return new DeltaSet(scratch)
            {
                Descriptor = descriptor, Raw = raw, Entries = entries, Blobs = blobs, Skipped = skipped,
                NewLayerBytes = todo.Sum(l => l.Descriptor.Size), Seconds = clock.Elapsed.TotalSeconds,
            };
        }
        catch
        {
            scratch.Dispose();
            throw;
        }
    }

    /// <summary>The old layers a new layer's delta starts from: those sharing a component with it, in the old image's order.</summary>
    private static List<Layer> Candidates(Image old, Layer layer)
    {
        var components = Components(layer.Descriptor).ToHashSet(StringComparer.Ordinal);
        return old.Layers.Where(l => Components(l.Descriptor).Any(components.Contains))
            .DistinctBy(l => l.Descriptor.Digest).ToList();
    }

    private static string? WhyNot(Image old, Layer layer)
    {
        if (LayerCompressionParams.Of(layer.Descriptor) is not { } p) return $"it has no {Annotations.Compression} annotation, so its blob cannot be made again from its tar";
        if (p.WhyNotReproducible() is { } why) return why;
        if (Components(layer.Descriptor).Count == 0) return "it names no components, so no old layer corresponds to it";
        if (Candidates(old, layer).Count == 0) return "none of its components is in the old image";
        return null;
    }

    /// <summary>A layer's component names (ours, else rpm-ostree's key), as the builder writes them.</summary>
    internal static List<string> Components(Descriptor layer) =>
        (layer.Annotations?.GetValueOrDefault(Annotations.Components) ?? layer.Annotations?.GetValueOrDefault(Annotations.OstreeComponents) ?? "")
        .Split(',', StringSplitOptions.RemoveEmptyEntries).ToList();

    /// <summary>An old layer's tar in the scratch directory, checked against its diff_id (the blob against its digest on the way).</summary>
    private static string WriteTar(Layer layer, string dir)
    {
        var path = Path.Join(dir, "old-" + Digest.Hex(layer.Descriptor.Digest) + ".tar");
        using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
        using (var hash = new HashingStream(file, leaveOpen: true))
        using (var tar = layer.OpenUncompressed())
        {
            tar.CopyTo(hash, 1 << 17);
            if (hash.Digest() != layer.DiffId)
                throw new TreechunkException($"{layer.Name} of the old image decompresses to {hash.Digest()}, not its diff_id {layer.DiffId}", ExitCodes.VerificationFailed);
        }
        return path;
    }

    private static (DeltaEntry?, string?, DeltaSkip?) MakeOne(Layer layer, List<Layer> from, List<string> oldTars, string dir, int level, Action<string>? log)
    {
        var d = layer.Descriptor;
        var hex = Digest.Hex(d.Digest);
        var compression = LayerCompressionParams.Of(d)!;
        // 1. The new tar into a file, checked against the diff_id, and compressed again as the
        //    annotation says on the way: the delta is only worth keeping when that gives the blob.
        var newTar = Path.Join(dir, "new-" + hex + ".tar");
        long tarSize;
        try
        {
            using (var file = new FileStream(newTar, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            using (var blobHash = new HashingStream(Stream.Null))
            {
                using (var tarHash = new HashingStream(file, leaveOpen: true))
                {
                    using (var recompress = compression.Compress(blobHash))
                    using (var tar = layer.OpenUncompressed())
                    {
                        var buffer = new byte[1 << 17];
                        int n;
                        while ((n = tar.Read(buffer)) > 0)
                        {
                            tarHash.Write(buffer.AsSpan(0, n));
                            recompress.Write(buffer.AsSpan(0, n));
                        }
                    }
                    if (tarHash.Digest() != layer.DiffId)
                        throw new TreechunkException($"it decompresses to {tarHash.Digest()}, not its diff_id {layer.DiffId}", ExitCodes.VerificationFailed);
                    tarSize = tarHash.BytesWritten;
                }
                if (blobHash.Digest() != d.Digest || blobHash.BytesWritten != d.Size)
                    return (null, null, new DeltaSkip(d.Digest, d.Size, $"compressing its tar again ({compression}) gives {blobHash.Digest()}, not the layer's blob"));
            }

            // 2. The prefix: the old tars end to end (one file, mapped).
            string prefixPath = oldTars[0];
            if (oldTars.Count > 1)
            {
                prefixPath = Path.Join(dir, "prefix-" + hex + ".tar");
                using var prefixFile = new FileStream(prefixPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
                foreach (var t in oldTars)
                    using (var s = File.OpenRead(t)) s.CopyTo(prefixFile, 1 << 17);
            }
            try
            {
                long prefixSize = new FileInfo(prefixPath).Length;
                if (prefixSize > ZstdPatch.MaxPrefix)
                    return (null, null, new DeltaSkip(d.Digest, d.Size, $"its old layers' tars are {prefixSize >> 20} MiB, over the {ZstdPatch.MaxPrefix >> 20} MiB a delta's prefix may be"));
                if (tarSize + prefixSize > 1L << ZstdPatch.MaxWindowLog)
                    return (null, null, new DeltaSkip(d.Digest, d.Size, $"old and new tar together are over the {(1L << ZstdPatch.MaxWindowLog) >> 20} MiB window"));

                // 3. The delta.
                var deltaPath = Path.Join(dir, "delta-" + hex);
                string digest;
                long size;
                using (var prefix = MappedFile.Open(prefixPath))
                using (var input = new FileStream(newTar, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
                using (var output = new FileStream(deltaPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                using (var hash = new HashingStream(output, leaveOpen: true))
                {
                    ZstdPatch.Create(prefix, input, tarSize, hash, level);
                    digest = hash.Digest();
                    size = hash.BytesWritten;
                }
                if (size >= d.Size)
                {
                    File.Delete(deltaPath);
                    return (null, null, new DeltaSkip(d.Digest, d.Size, $"its delta ({size} bytes) is no smaller than the layer ({d.Size} bytes)"));
                }
                var sources = from.Select(f => new DeltaSource(f.Descriptor.Digest, f.Descriptor.MediaType, f.DiffId)).ToList();
                var blob = new Descriptor
                {
                    MediaType = DeltaArtifact.LayerMediaType, Digest = digest, Size = size,
                    Annotations = DeltaArtifact.Annotate(sources, d.Digest, layer.DiffId, tarSize),
                };
                log?.Invoke($"delta for layer {d.Digest} ({d.Size} bytes) from {from.Count} old layer(s): {size} bytes");
                return (new DeltaEntry(blob, sources, d.Digest, layer.DiffId, tarSize), deltaPath, null);
            }
            finally
            {
                if (prefixPath != oldTars[0]) File.Delete(prefixPath);
            }
        }
        finally
        {
            File.Delete(newTar);
        }
    }
}
