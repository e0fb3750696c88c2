using System.Security.Cryptography;
using Treechunk.Build;
using Treechunk.IO;
using Treechunk.Layers;
using Treechunk.Oci;
using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Diff;

public enum LayerStatus { Reused, Changed, Added, Removed }

public enum FileStatus { Added, Removed, Modified }

public enum ComponentStatus { Added, Removed, Changed }

/// <summary>One layer of either image, as the update from OLD to NEW sees it.</summary>
public sealed record LayerDiff
{
    public required int Index { get; init; }
    public required Descriptor Descriptor { get; init; }
    public required string DiffId { get; init; }
    /// <summary>Reused (the other image has the same digest), Changed (the successor or predecessor of a layer of the other image), Added (NEW only) or Removed (OLD only).</summary>
    public required LayerStatus Status { get; init; }
    /// <summary>The index of the same (Reused) or corresponding (Changed) layer in the other image.</summary>
    public int? Match { get; init; }
    public required IReadOnlyList<string> Components { get; init; }
    /// <summary>Bytes of the uncompressed tar, when the layer was read (null with files off).</summary>
    public long? UncompressedSize { get; init; }
    public bool HasToc { get; init; }
    /// <summary>NEW layers: the compressed bytes an update fetches for it (0 when reused, or when the same blob is listed earlier).</summary>
    public long DownloadBytes { get; init; }
    /// <summary>NEW layers: what a partial pull fetches for it (see <see cref="IPartialPullEstimator"/>).</summary>
    public long PartialPullBytes { get; init; }
    public string? PartialPullMethod { get; init; }
    /// <summary>NEW layers, when NEW has a delta artifact: what a pull with deltas fetches for it (its delta, else what the pull would fetch without).</summary>
    public long? DeltaPullBytes { get; init; }
    /// <summary>"delta", or how the layer is fetched when no usable delta is there (the partial pull's method).</summary>
    public string? DeltaPullMethod { get; init; }
    public long Size => Descriptor.Size;
    public string Digest => Descriptor.Digest;
}

/// <summary>A component that came, went, or changed in a downloaded layer.</summary>
/// <param name="Evidence">For Changed: "stats" (its files/bytes annotation differs) or "files" (its downloaded layer holds changed files and no component's annotation says which).</param>
public sealed record ComponentDiff(string Name, ComponentStatus Status, int? OldLayer, int? NewLayer,
    int? OldFiles, long? OldBytes, int? NewFiles, long? NewBytes, string? Evidence);

/// <summary>One path whose final state differs between the images' flattened trees.</summary>
/// <param name="OldDigest">Content digest of a regular file (null for other types and when absent).</param>
/// <param name="OldLayer">Index of the layer that gave the path its final content.</param>
public sealed record FileDiff(string Path, FileStatus Status, string? OldType, string? NewType,
    string? OldDigest, string? NewDigest, long? OldSize, long? NewSize, int? OldLayer, int? NewLayer);

public sealed record ImageDiffResult
{
    public required Image Old { get; init; }
    public required Image New { get; init; }
    public required IReadOnlyList<LayerDiff> OldLayers { get; init; }
    public required IReadOnlyList<LayerDiff> NewLayers { get; init; }
    public required IReadOnlyList<ComponentDiff> Components { get; init; }
    /// <summary>Null when files were not compared.</summary>
    public IReadOnlyList<FileDiff>? Files { get; init; }
    public long DownloadBytes => NewLayers.Sum(l => l.DownloadBytes);
    public long PartialPullBytes => NewLayers.Sum(l => l.PartialPullBytes);
    /// <summary>Where NEW's delta artifact is (tag or referrer) and its digest; null when NEW has none.</summary>
    public string? DeltaArtifact { get; init; }
    /// <summary>The download with deltas (the artifact's manifest included); null when NEW has no delta artifact.</summary>
    public long? DeltaPullBytes { get; init; }
    /// <summary>Layers re-read to hash contents that the first pass left unhashed (see <see cref="ImageDiff"/>).</summary>
    public int LayersReread { get; init; }
    /// <summary>Distinct layer blobs read (each once, whichever image lists it).</summary>
    public int LayersRead { get; init; }
}

public sealed record ImageDiffOptions
{
    /// <summary>Compare the flattened file lists (reads layer blobs); false reads manifests and configs only.</summary>
    public bool Files { get; init; } = true;
    public IPartialPullEstimator PartialPull { get; init; } = new TocPartialPull();
    public Action<string>? Log { get; init; }
    public Action<string>? Warn { get; init; }
    /// <summary>Look for NEW's delta artifact beside it and count the download with deltas.</summary>
    public bool Deltas { get; init; } = true;
    /// <summary>Layers read at once (decompression is CPU-bound; registry blobs wait on the network).</summary>
    public int Parallel { get; init; } = Math.Max(2, Environment.ProcessorCount);
}

/// <summary>
/// What an update from OLD to NEW costs and changes: layers reused, changed, added and removed;
/// the bytes a client downloads (at layer level, and with partial pull through
/// <see cref="IPartialPullEstimator"/>); the components (from the layers' annotations) and the
/// files (from the flattened trees) that changed.
/// <para>
/// Files. Each image's flattened tree is built with <see cref="LayerApplier"/> (the same
/// whiteout, opaque-directory, replacement and hardlink rules as extract and rechunk), and the
/// trees are compared path by path: type, mode, owner, xattrs, symlink target, device numbers,
/// and for regular files the SHA-256 of the content (mtimes are ignored: builders clamp them).
/// </para>
/// <para>
/// Shared layers still have to be read: a later layer of one image can override or whiteout
/// what a shared layer holds, and whether NEW's whiteout of /x removes a file depends on
/// whether a shared layer had /x. What sharing saves is this: every distinct blob is read once
/// (its entries are recorded, metadata only, and replayed into both trees), and a shared
/// layer's file contents are not hashed. Such a file gets an identity naming its layer digest
/// and entry number instead, so two such identities are equal only for the same entry of the
/// same blob, which is the same bytes in both images. When a compared pair would need the real
/// digest (an identity of this kind against a different one), the few layers concerned are read
/// again, hashing just those entries. To make that rare, the first pass reads the layers that
/// are not shared first and hashes, in shared layers, every path they touch (their entries, the
/// subtrees their files replace and their whiteouts hide, their hardlink targets).
/// </para>
/// </summary>
public static class ImageDiff
{
    public static ImageDiffResult Compare(Image oldImage, Image newImage, ImageDiffOptions? options = null)
    {
        options ??= new ImageDiffOptions();
        var oldDigests = oldImage.Manifest.Layers.Select(l => l.Digest).ToHashSet(StringComparer.Ordinal);
        var newDigests = newImage.Manifest.Layers.Select(l => l.Digest).ToHashSet(StringComparer.Ordinal);

        // Files first: they give uncompressed sizes, and the components' "files" evidence.
        FileComparison? files = options.Files ? CompareFiles(oldImage, newImage, oldDigests, newDigests, options) : null;

        var (oldLayers, newLayers) = ClassifyLayers(oldImage, newImage, oldDigests, files, options.PartialPull);
        var components = CompareComponents(oldLayers, newLayers, files?.Files);
        var (deltaArtifact, deltaBytes) = options.Deltas ? CountDeltas(newImage, oldDigests, newLayers, options) : (null, null);
        return new ImageDiffResult
        {
            Old = oldImage, New = newImage, OldLayers = oldLayers, NewLayers = newLayers, Components = components,
            Files = files?.Files, LayersRead = files?.LayersRead ?? 0, LayersReread = files?.LayersReread ?? 0,
            DeltaArtifact = deltaArtifact, DeltaPullBytes = deltaBytes,
        };
    }

    // ---- deltas ----

    /// <summary>
    /// What a pull with deltas fetches: NEW's delta artifact (found beside it, as a pull finds
    /// it), then for each downloaded layer its delta when every old layer it starts from is in
    /// OLD, else what the pull fetches without (partial or whole). Fills each layer's numbers.
    /// </summary>
    private static (string?, long?) CountDeltas(Image newImage, HashSet<string> oldDigests, List<LayerDiff> newLayers, ImageDiffOptions options)
    {
        Delta.FoundDeltas? found;
        try
        {
            found = Delta.DeltaStore.Find(newImage.Source, newImage.Descriptor.Digest, options.Log);
        }
        catch (TreechunkException e)
        {
            options.Warn?.Invoke($"the deltas of {newImage.Descriptor.Digest} are not counted: {e.Message}");
            return (null, null);
        }
        if (found == null) return (null, null);
        var byTarget = new Dictionary<string, Delta.DeltaEntry>(StringComparer.Ordinal);
        foreach (var e in found.Entries) byTarget.TryAdd(e.ToDigest, e);
        long total = found.Raw.Length;
        for (int i = 0; i < newLayers.Count; i++)
        {
            var l = newLayers[i];
            if (l.DownloadBytes == 0) { newLayers[i] = l with { DeltaPullBytes = 0 }; continue; }
            bool usable = byTarget.TryGetValue(l.Digest, out var entry) && entry.From.All(f => oldDigests.Contains(f.Digest))
                          && Oci.LayerCompressionParams.Of(l.Descriptor)?.WhyNotReproducible() == null;
            var bytes = usable ? entry!.Blob.Size : l.PartialPullBytes;
            newLayers[i] = l with { DeltaPullBytes = bytes, DeltaPullMethod = usable ? "delta" : l.PartialPullMethod };
            total += bytes;
        }
        return ($"{found.Origin} ({found.Descriptor.Digest})", total);
    }

    // ---- layers ----

    private static (List<LayerDiff> Old, List<LayerDiff> New) ClassifyLayers(Image oldImage, Image newImage,
        HashSet<string> oldDigests, FileComparison? files, IPartialPullEstimator partialPull)
    {
        var oldL = oldImage.Layers;
        var newL = newImage.Layers;
        var newDigests = newL.Select(l => l.Descriptor.Digest).ToHashSet(StringComparer.Ordinal);
        var oldIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = oldL.Count - 1; i >= 0; i--) oldIndex[oldL[i].Descriptor.Digest] = i;
        var newIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = newL.Count - 1; i >= 0; i--) newIndex[newL[i].Descriptor.Digest] = i;

        var oldComponents = oldL.Select(l => LayerAnnotations.Components(l.Descriptor)).ToList();
        var newComponents = newL.Select(l => LayerAnnotations.Components(l.Descriptor)).ToList();

        // A layer NEW does not share is "changed" when it succeeds a layer of OLD that is gone
        // too: the one holding most of its components, or for images without component
        // annotations the one at the same position. Otherwise it is "added"; OLD's gone layers
        // that nothing succeeds are "removed".
        var matchOfNew = new int?[newL.Count];
        var matchOfOld = new int?[oldL.Count];
        bool annotated = oldComponents.Any(c => c.Count > 0) && newComponents.Any(c => c.Count > 0);
        var seenNew = new HashSet<string>(StringComparer.Ordinal);
        for (int n = 0; n < newL.Count; n++)
        {
            var digest = newL[n].Descriptor.Digest;
            if (oldDigests.Contains(digest) || !seenNew.Add(digest)) continue;
            int? best = null;
            if (annotated)
            {
                var mine = newComponents[n].ToHashSet(StringComparer.Ordinal);
                int bestOverlap = 0;
                for (int o = 0; o < oldL.Count; o++)
                {
                    if (matchOfOld[o] != null || newDigests.Contains(oldL[o].Descriptor.Digest)) continue;
                    int overlap = oldComponents[o].Count(mine.Contains);
                    if (overlap > bestOverlap) (best, bestOverlap) = (o, overlap);
                }
            }
            else if (n < oldL.Count && matchOfOld[n] == null && !newDigests.Contains(oldL[n].Descriptor.Digest))
                best = n;
            if (best is { } b)
            {
                matchOfNew[n] = b;
                matchOfOld[b] = n;
            }
        }

        var oldResult = oldL.Select((l, i) => new LayerDiff
        {
            Index = i, Descriptor = l.Descriptor, DiffId = l.DiffId, Components = oldComponents[i],
            Status = newDigests.Contains(l.Descriptor.Digest) ? LayerStatus.Reused : matchOfOld[i] != null ? LayerStatus.Changed : LayerStatus.Removed,
            Match = newDigests.Contains(l.Descriptor.Digest) ? newIndex[l.Descriptor.Digest] : matchOfOld[i],
            UncompressedSize = files?.TarSizes.GetValueOrDefault(l.Descriptor.Digest),
            HasToc = ZstdChunked.IsChunked(l.Descriptor),
        }).ToList();

        var counted = new HashSet<string>(StringComparer.Ordinal);
        var newResult = new List<LayerDiff>();
        for (int i = 0; i < newL.Count; i++)
        {
            var l = newL[i];
            var digest = l.Descriptor.Digest;
            bool reused = oldDigests.Contains(digest);
            // A blob listed twice is fetched once.
            bool fetched = !reused && counted.Add(digest);
            var partial = fetched ? partialPull.Estimate(oldImage, l) : null;
            newResult.Add(new LayerDiff
            {
                Index = i, Descriptor = l.Descriptor, DiffId = l.DiffId, Components = newComponents[i],
                // A blob listed again takes what its first listing got.
                Status = reused ? LayerStatus.Reused : matchOfNew[newIndex[digest]] != null ? LayerStatus.Changed : LayerStatus.Added,
                Match = reused ? oldIndex[digest] : matchOfNew[newIndex[digest]],
                UncompressedSize = files?.TarSizes.GetValueOrDefault(digest),
                HasToc = ZstdChunked.IsChunked(l.Descriptor),
                DownloadBytes = fetched ? l.Descriptor.Size : 0,
                PartialPullBytes = partial?.Bytes ?? 0,
                PartialPullMethod = partial?.Method,
            });
        }
        return (oldResult, newResult);
    }

    // ---- components ----

    private static List<ComponentDiff> CompareComponents(List<LayerDiff> oldLayers, List<LayerDiff> newLayers, IReadOnlyList<FileDiff>? files)
    {
        static Dictionary<string, (int Layer, int? Files, long? Bytes)> Index(List<LayerDiff> layers)
        {
            var result = new Dictionary<string, (int, int?, long?)>(StringComparer.Ordinal);
            foreach (var l in layers)
            {
                var stats = LayerAnnotations.Stats(l.Descriptor)?.ToDictionary(s => s.Name, StringComparer.Ordinal);
                foreach (var name in l.Components)
                    if (!result.ContainsKey(name))
                        result[name] = stats != null && stats.TryGetValue(name, out var s) ? (l.Index, s.Files, s.Bytes) : (l.Index, null, null);
            }
            return result;
        }
        var oldC = Index(oldLayers);
        var newC = Index(newLayers);

        var result = new List<ComponentDiff>();
        foreach (var (name, o) in oldC)
            if (!newC.ContainsKey(name))
                result.Add(new ComponentDiff(name, ComponentStatus.Removed, o.Layer, null, o.Files, o.Bytes, null, null, null));
        foreach (var (name, n) in newC)
            if (!oldC.ContainsKey(name))
                result.Add(new ComponentDiff(name, ComponentStatus.Added, null, n.Layer, null, null, n.Files, n.Bytes, null));

        // Changed: in both, and in a layer NEW downloads (a component in a reused layer has the
        // same bytes). The stats annotation says it for sure; without a difference there, the
        // layer's changed files are pinned on its components only when none of them is already
        // known to have changed by its stats, since which component a file belongs to is not
        // recorded in the image.
        var byStats = new HashSet<string>(StringComparer.Ordinal);
        var candidates = new List<string>();
        foreach (var (name, n) in newC)
        {
            if (!oldC.TryGetValue(name, out var o) || newLayers[n.Layer].Status == LayerStatus.Reused) continue;
            if (o.Files != null && n.Files != null && (o.Files != n.Files || o.Bytes != n.Bytes)) byStats.Add(name);
            else candidates.Add(name);
        }
        var newLayersWithChanges = new HashSet<int>();
        var oldLayersWithChanges = new HashSet<int>();
        foreach (var f in files ?? [])
        {
            if (f.Status != FileStatus.Removed && f.NewLayer is { } nl) newLayersWithChanges.Add(nl);
            if (f.Status != FileStatus.Added && f.OldLayer is { } ol) oldLayersWithChanges.Add(ol);
        }
        var layersExplained = byStats.Select(c => newC[c].Layer).ToHashSet();
        var oldLayersExplained = byStats.Select(c => oldC[c].Layer).ToHashSet();
        var byFiles = candidates.Where(c =>
            (newLayersWithChanges.Contains(newC[c].Layer) && !layersExplained.Contains(newC[c].Layer)) ||
            (oldLayersWithChanges.Contains(oldC[c].Layer) && !oldLayersExplained.Contains(oldC[c].Layer))).ToHashSet(StringComparer.Ordinal);
        foreach (var name in byStats.Concat(byFiles))
        {
            var (o, n) = (oldC[name], newC[name]);
            result.Add(new ComponentDiff(name, ComponentStatus.Changed, o.Layer, n.Layer, o.Files, o.Bytes, n.Files, n.Bytes,
                byStats.Contains(name) ? "stats" : "files"));
        }
        return result.OrderBy(c => c.Status).ThenBy(c => c.Name, StringComparer.Ordinal).ToList();
    }

    // ---- files ----

    private sealed class FileComparison
    {
        public required List<FileDiff> Files;
        public required Dictionary<string, long> TarSizes;
        public int LayersRead;
        public int LayersReread;
    }

    /// <summary>
    /// The content of one regular-file entry as recorded: a digest, or, for a shared layer's
    /// entry left unhashed, "layer:DIGEST#N" (entry N of that blob). Replayed entries carry this
    /// as their content stream, so the tree model hands it to the sink.
    /// </summary>
    private sealed class ContentRef(string identity, string layerDigest, int ordinal) : ReadOnlyStream
    {
        public string Identity = identity;
        public readonly string LayerDigest = layerDigest;
        public readonly int Ordinal = ordinal;
        public bool Hashed => !Identity.StartsWith("layer:", StringComparison.Ordinal);
        public override int Read(Span<byte> buffer) => 0;
    }

    private sealed record RecordedLayer(List<TarEntry> Entries, long TarSize);

    private static FileComparison CompareFiles(Image oldImage, Image newImage, HashSet<string> oldDigests, HashSet<string> newDigests, ImageDiffOptions options)
    {
        // Every distinct blob once; the image that lists it first provides it.
        var blobs = new Dictionary<string, Layer>(StringComparer.Ordinal);
        foreach (var l in newImage.Layers.Concat(oldImage.Layers)) blobs.TryAdd(l.Descriptor.Digest, l);
        var shared = blobs.Keys.Where(d => oldDigests.Contains(d) && newDigests.Contains(d)).ToHashSet(StringComparer.Ordinal);

        var records = new Dictionary<string, RecordedLayer>(StringComparer.Ordinal);
        var exact = new HashSet<string>(StringComparer.Ordinal);
        var subtree = new HashSet<string>(StringComparer.Ordinal);
        ReadAll(blobs.Where(b => !shared.Contains(b.Key)).Select(b => b.Value), records, options, "not shared", (_, _) => true);
        foreach (var digest in records.Keys) Touches(records[digest], exact, subtree);
        bool Touched(string path) =>
            exact.Contains(path) || subtree.Contains(path) || TreePaths.Ancestors(path).Any(subtree.Contains);
        ReadAll(blobs.Where(b => shared.Contains(b.Key)).Select(b => b.Value), records, options, "shared", (path, _) => Touched(path));

        var oldTree = Flatten(oldImage, records, options.Warn);
        var newTree = Flatten(newImage, records, options.Warn);
        var diffs = Diff(oldTree, newTree);

        // Any reported path whose content is still an unhashed identity gets its real digest:
        // re-read just those layers, hashing just those entries, and compare again.
        var missing = new Dictionary<string, HashSet<int>>(StringComparer.Ordinal);
        foreach (var path in diffs)
            foreach (var state in new[] { oldTree.GetValueOrDefault(path), newTree.GetValueOrDefault(path) })
                if (state?.Content is { Hashed: false } c)
                {
                    if (!missing.TryGetValue(c.LayerDigest, out var set)) missing[c.LayerDigest] = set = [];
                    set.Add(c.Ordinal);
                }
        foreach (var (digest, ordinals) in missing)
        {
            options.Log?.Invoke($"reading {blobs[digest].Name} again to hash {ordinals.Count} files");
            var again = Record(blobs[digest], (_, n) => ordinals.Contains(n));
            var before = records[digest].Entries;
            for (int i = 0; i < before.Count; i++)
                if (before[i].Content is ContentRef { Hashed: false } c && ordinals.Contains(c.Ordinal))
                    c.Identity = ((ContentRef)again.Entries[i].Content).Identity;
        }
        if (missing.Count > 0) diffs = Diff(oldTree, newTree);

        var files = diffs.Select(p => Describe(p, oldTree.GetValueOrDefault(p), newTree.GetValueOrDefault(p))).ToList();
        return new FileComparison
        {
            Files = files,
            TarSizes = records.ToDictionary(r => r.Key, r => r.Value.TarSize, StringComparer.Ordinal),
            LayersRead = records.Count,
            LayersReread = missing.Count,
        };
    }

    /// <summary>Records layers side by side (largest first, so the pool drains evenly), as oci copy moves blobs.</summary>
    private static void ReadAll(IEnumerable<Layer> layers, Dictionary<string, RecordedLayer> records, ImageDiffOptions options, string kind, Func<string, int, bool> hash)
    {
        var todo = layers.OrderByDescending(l => l.Descriptor.Size).ToList();
        var done = new System.Collections.Concurrent.ConcurrentDictionary<string, RecordedLayer>(StringComparer.Ordinal);
        try
        {
            Parallel.ForEach(todo, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.Parallel) }, layer =>
            {
                options.Log?.Invoke($"reading {layer.Name} ({kind})");
                done[layer.Descriptor.Digest] = Record(layer, hash);
            });
        }
        catch (AggregateException e) when (e.Flatten().InnerExceptions.FirstOrDefault() is TreechunkException first)
        {
            // One clear error, as a sequential read would give.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
        foreach (var (digest, rec) in done) records[digest] = rec;
    }

    /// <summary>
    /// The paths a layer's entries can affect in a tree below it: exact ones (a directory entry
    /// changes that directory alone), whole subtrees (a non-directory replaces whatever was
    /// there; a whiteout hides a path and everything under it; an opaque marker its directory's
    /// contents), and hardlink targets, whose content the link takes.
    /// </summary>
    private static void Touches(RecordedLayer layer, HashSet<string> exact, HashSet<string> subtree)
    {
        foreach (var e in layer.Entries)
        {
            var path = TreePaths.Normalize(e.Path);
            if (path == null || path.Length == 0) continue;
            int slash = path.LastIndexOf('/');
            var (dir, name) = slash < 0 ? ("", path) : (path[..slash], path[(slash + 1)..]);
            if (name == ".wh..wh..opq") subtree.Add(dir);
            else if (name.StartsWith(".wh.", StringComparison.Ordinal)) subtree.Add(dir.Length == 0 ? name[4..] : dir + "/" + name[4..]);
            else if (e.Type == TarEntryType.Directory) exact.Add(path);
            else subtree.Add(path);
            if (e.Type == TarEntryType.Hardlink && e.LinkName != null && TreePaths.Normalize(e.LinkName) is { Length: > 0 } target)
                exact.Add(target);
        }
    }

    /// <summary>Reads a layer's tar once (verifying the blob), keeping entries' metadata and the identity of each file's content.</summary>
    private static RecordedLayer Record(Layer layer, Func<string, int, bool> hash)
    {
        var digest = layer.Descriptor.Digest;
        var entries = new List<TarEntry>();
        using var tar = layer.OpenUncompressed();
        var counted = new CountingReadStream(tar);
        try
        {
            using (var reader = new TarReader(counted, layer.Name, leaveOpen: true))
            {
                int ordinal = 0;
                while (reader.Next() is { } e)
                {
                    Stream content = Stream.Null;
                    if (e.Type == TarEntryType.Regular)
                    {
                        var path = TreePaths.Normalize(e.Path) ?? e.Path;
                        content = new ContentRef(hash(path, ordinal) ? HashContent(e.Content) : $"layer:{digest}#{ordinal}", digest, ordinal);
                    }
                    entries.Add(new TarEntry
                    {
                        Path = e.Path, Type = e.Type, Mode = e.Mode, Uid = e.Uid, Gid = e.Gid, UserName = e.UserName,
                        GroupName = e.GroupName, Size = e.Size, MTime = e.MTime, LinkName = e.LinkName,
                        DevMajor = e.DevMajor, DevMinor = e.DevMinor, Xattrs = e.Xattrs,
                        HeaderOffset = e.HeaderOffset, DataOffset = e.DataOffset, Content = content,
                    });
                    ordinal++;
                }
            }
            // Past the tar's end marker to the end of the blob, so its digest is checked too.
            counted.CopyTo(Stream.Null);
        }
        catch (TreechunkException e) when (e.ExitCode == ExitCodes.BadInput)
        {
            // A damaged blob shows up as a tar error first; its digest is the truer diagnosis.
            if (Layer.CheckBlob(tar) is { } corrupt) throw new TreechunkException(corrupt, ExitCodes.VerificationFailed, e);
            throw;
        }
        return new RecordedLayer(entries, counted.Count);
    }

    private static string HashContent(Stream content)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        int n;
        while ((n = content.Read(buffer)) > 0) sha.AppendData(buffer.AsSpan(0, n));
        return "sha256:" + Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>A path's final state in a flattened tree.</summary>
    private sealed record PathState(TreeEntry Meta, ContentRef? Content, int Layer);

    private static Dictionary<string, PathState> Flatten(Image image, Dictionary<string, RecordedLayer> records, Action<string>? warn)
    {
        var sink = new IdentitySink();
        var applier = new LayerApplier(sink, warn);
        foreach (var layer in image.Layers)
        {
            sink.Layer = layer.Index;
            applier.ApplyEntries(records[layer.Descriptor.Digest].Entries, layer.Name);
        }
        var result = new Dictionary<string, PathState>(StringComparer.Ordinal);
        foreach (var (path, inode) in applier.Snapshot())
        {
            var (content, layer) = inode.SinkData is (ContentRef c, int l) ? (c, l) : (null, inode.SinkData is int i ? i : -1);
            result[path] = new PathState(inode.Meta, content, layer);
        }
        return result;
    }

    /// <summary>Keeps, per inode, the content identity and the layer that made it; writes nothing.</summary>
    private sealed class IdentitySink : ILayerSink
    {
        public int Layer;
        public void CreateDirectory(string path, LayerInode dir) => dir.SinkData = Layer;
        public void WriteFile(string path, LayerInode file, Stream content) => file.SinkData = ((ContentRef)content, Layer);
        public void CreateHardlink(string path, string existingPath, LayerInode inode) { }
        public void CreateSpecial(string path, LayerInode inode) => inode.SinkData = Layer;
        public void Remove(string path, LayerInode inode, bool lastLink) { }
    }

    private static List<string> Diff(Dictionary<string, PathState> oldTree, Dictionary<string, PathState> newTree)
    {
        var paths = new List<string>();
        foreach (var (path, o) in oldTree)
            if (!newTree.TryGetValue(path, out var n) || !Same(o, n)) paths.Add(path);
        foreach (var path in newTree.Keys)
            if (!oldTree.ContainsKey(path)) paths.Add(path);
        paths.Sort(StringComparer.Ordinal);
        return paths;
    }

    private static bool Same(PathState a, PathState b)
    {
        TreeEntry x = a.Meta, y = b.Meta;
        if (x.Type != y.Type || x.Mode != y.Mode || x.Uid != y.Uid || x.Gid != y.Gid || x.LinkTarget != y.LinkTarget ||
            x.DevMajor != y.DevMajor || x.DevMinor != y.DevMinor || x.Xattrs.Count != y.Xattrs.Count)
            return false;
        for (int i = 0; i < x.Xattrs.Count; i++)
            if (x.Xattrs[i].Key != y.Xattrs[i].Key || !x.Xattrs[i].Value.AsSpan().SequenceEqual(y.Xattrs[i].Value)) return false;
        return x.Type != EntryType.Regular || a.Content!.Identity == b.Content!.Identity;
    }

    private static FileDiff Describe(string path, PathState? o, PathState? n) => new(
        path,
        o == null ? FileStatus.Added : n == null ? FileStatus.Removed : FileStatus.Modified,
        o != null ? TypeName(o.Meta.Type) : null, n != null ? TypeName(n.Meta.Type) : null,
        o?.Content?.Identity, n?.Content?.Identity,
        o?.Meta.Type == EntryType.Regular ? o.Meta.Size : null, n?.Meta.Type == EntryType.Regular ? n.Meta.Size : null,
        o?.Layer, n?.Layer);

    public static string TypeName(EntryType t) => t switch
    {
        EntryType.Regular or EntryType.Hardlink => "file",
        EntryType.Directory => "dir",
        EntryType.Symlink => "symlink",
        EntryType.CharDevice => "char",
        EntryType.BlockDevice => "block",
        _ => "fifo",
    };

    private sealed class CountingReadStream(Stream inner) : ReadOnlyStream
    {
        public long Count;

        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            Count += n;
            return n;
        }
    }
}
