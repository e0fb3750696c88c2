using System.Diagnostics;
using Treechunk.Chunking;
using Treechunk.Layers;
using Treechunk.Oci;
using Treechunk.Packages;
using Treechunk.Trees;

namespace Treechunk.Build;

public sealed record BuildResult(
    string Tag,
    Descriptor ManifestDescriptor,
    ImageManifest Manifest,
    ImageConfig Config,
    IReadOnlyList<Component> Components,
    ChunkPlan Plan,
    ChunkAlgorithm Algorithm,
    string? PackageDatabase,
    BuildMetrics Metrics);

public sealed class BuildMetrics
{
    /// <summary>Time spent reading the source tree's metadata (or flattening a source image) before the build, when measured.</summary>
    public double? ScanSeconds { get; set; }
    public Dictionary<string, double> PhaseSeconds { get; } = new();
    /// <summary>Memory at the end of each phase (where a big tree's memory goes: the managed heap, what the GC holds, the process).</summary>
    public Dictionary<string, MemorySample> PhaseMemory { get; } = new();
    /// <summary>
    /// Seconds from the process's start to the start of the first layer: runtime start-up, the
    /// command line, the scan, components and plan. The fixed cost every build pays before any
    /// compressing happens (the scale benchmark's "before the first layer").
    /// </summary>
    public double? FirstLayerAfterStart { get; set; }
    public long BytesIn { get; set; }
    public long BytesOut { get; set; }
    public long UncompressedBytes { get; set; }
    public int Files { get; set; }
    public int Layers { get; set; }
    public int Components { get; set; }
    /// <summary>Layers taken from the layer cache without compressing.</summary>
    public int LayersReused { get; set; }
    public int LayersCompressed { get; set; }
    /// <summary>With a previous image: whether its plan was kept (false: it no longer fit, planned afresh); null without one.</summary>
    public bool? KeptPrevious { get; set; }
}

/// <summary>One look at the process's memory, in bytes.</summary>
/// <param name="Heap">Managed heap after the last GC (live objects plus fragmentation).</param>
/// <param name="Committed">Memory the GC has committed (what the heap costs the process).</param>
/// <param name="Rss">Resident set now; <paramref name="PeakRss"/> its high-water mark so far (VmHWM).</param>
/// <param name="Live">Live objects after a full collection; only when TREECHUNK_MEASURE_LIVE=1,
/// since the collection itself changes what the run's RSS would have been. Heap and committed
/// depend on when the GC last ran, so they swing from run to run; this does not.</param>
/// <param name="Collections">Garbage collections so far, of generations 0, 1 and 2.</param>
/// <param name="Allocated">Bytes allocated on the managed heap so far (what the collections had to clear).</param>
public sealed record MemorySample(long Heap, long Committed, long? Rss, long? PeakRss, long? Live = null, int[]? Collections = null, long Allocated = 0)
{
    private static readonly bool MeasureLive = Environment.GetEnvironmentVariable("TREECHUNK_MEASURE_LIVE") == "1";

    public static MemorySample Now()
    {
        long? live = MeasureLive ? GC.GetTotalMemory(forceFullCollection: true) : null;
        var info = GC.GetGCMemoryInfo();
        long? rss = null, peak = null;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kb(line);
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) peak = Kb(line);
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return new MemorySample(info.HeapSizeBytes, info.TotalCommittedBytes, rss, peak, live,
            [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)], GC.GetTotalAllocatedBytes());
    }

    private static long? Kb(string line) =>
        long.TryParse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), out var kb) ? kb * 1024 : null;
}

/// <summary>
/// The pipeline from a tree to a chunked image: components -> plan -> layer contents -> layers
/// (written in parallel by <see cref="LayerScheduler"/>) -> config, manifest and tag
/// (<see cref="ImageAssembler"/>), into any destination. This class only sequences the steps.
/// </summary>
public static class ChunkedImageBuilder
{
    private static double? SecondsSinceProcessStart()
    {
        try
        {
            using var self = Process.GetCurrentProcess();
            return Math.Round((DateTime.Now - self.StartTime).TotalSeconds, 3);
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or System.ComponentModel.Win32Exception)
        {
            return null; // no /proc: the metric is left out
        }
    }

    /// <summary>Entries from which a full collection between phases pays for its pause.</summary>
    private const int CollectBetweenPhasesFrom = 50_000;

    /// <summary>
    /// What each phase built per entry and drops at its end (the scan's directory lists, the
    /// package database and its owners, the components' lists) lived long enough to reach the
    /// oldest generation, which the GC collects rarely: on the 10 GB tree the heap held 220 MB
    /// after the plan for under 100 MB live, and that was the build's peak RSS. On a big tree one
    /// full collection at the end of a phase (about 0.1 s at 500k entries) frees it at once; a
    /// small tree does not pay the pause.
    /// </summary>
    private static void CollectWhatThePhaseLeft(ITree tree)
    {
        if (tree.Entries.Count >= CollectBetweenPhasesFrom)
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
    }

    /// <summary>Builds the image and commits it to <paramref name="destination"/> under <see cref="BuildOptions.Tag"/> (default latest).</summary>
    public static BuildResult Build(ITree tree, IImageDestination destination, BuildOptions options, IBuildProgress? progress = null)
    {
        progress ??= NullProgress.Instance;
        var metrics = new BuildMetrics();
        var clock = Stopwatch.StartNew();
        void EndPhase(string name)
        {
            metrics.PhaseSeconds[name] = Math.Round(clock.Elapsed.TotalSeconds, 3);
            if (name is "components" or "plan") CollectWhatThePhaseLeft(tree);
            metrics.PhaseMemory[name] = MemorySample.Now();
            clock.Restart();
        }

        // The tree is read by now: this is what its metadata costs.
        CollectWhatThePhaseLeft(tree);
        metrics.PhaseMemory["scan"] = MemorySample.Now();
        if (options.MaxLayers < 1) throw new TreechunkException("--max-layers must be at least 1");
        var level = options.CompressionLevel ?? LayerCompression.DefaultLevel(options.Compression);
        LayerCompression.ValidateLevel(options.Compression, level);
        if (options.ParallelLayers < 1) throw new TreechunkException("--parallel-layers must be at least 1");

        var (componentList, plan, layerEntries, algorithm, packageKind) = PlanLayers(tree, options, progress, EndPhase);

        progress.Phase("Writing layers");
        metrics.FirstLayerAfterStart = SecondsSinceProcessStart();
        progress.LayersStarted(plan.Layers.Count, plan.Layers.Sum(l => l.Size));
        var format = LayerFormats.For(options.Compression, level, options.ParallelChunks);
        var settings = new LayerSettings(format, options.Epoch)
        {
            Cache = options.LayerCacheDir != null ? new LayerCache(options.LayerCacheDir) : null,
        };
        var written = LayerScheduler.WriteAll(tree, layerEntries, destination, settings, options.ParallelLayers, progress);
        var componentByName = componentList.ToDictionary(c => c.Name, StringComparer.Ordinal);
        var layers = written.Select((w, i) => new ImageAssembler.AssembledLayer(w,
            LayerAnnotations.ForComponents(plan.Layers[i].Components, componentByName),
            string.Join(",", plan.Layers[i].Components))).ToList();
        var extraLabels = new Dictionary<string, string>(StringComparer.Ordinal);
        WrittenLayer? finalLayer = null;
        if (options.FinalLayer is { } fl)
        {
            var (entries, synthesized) = FinalLayerContents(fl);
            finalLayer = LayerWriter.Write(fl.Files, entries, destination, settings with { Cache = null });
            var annotations = LayerAnnotations.ForComponents([fl.Component], null);
            if (synthesized.Count > 0) annotations[SynthesizedDirsAnnotation] = string.Join(",", synthesized);
            layers.Add(new ImageAssembler.AssembledLayer(finalLayer, annotations, fl.Component));
            if (fl.DiffIdLabel is { } diffIdLabel) extraLabels[diffIdLabel] = finalLayer.DiffId;
        }
        EndPhase("write");

        progress.Phase("Writing manifest");
        var (manifestDescriptor, manifest, config) = ImageAssembler.Assemble(layers, destination, options, extraLabels);
        destination.Commit();
        EndPhase("finalize");

        metrics.BytesIn = tree.Entries.Sum(e => e.Size);
        metrics.BytesOut = layers.Sum(l => l.Written.Descriptor.Size);
        metrics.UncompressedBytes = layers.Sum(l => l.Written.UncompressedSize);
        metrics.Files = tree.Entries.Count;
        metrics.Layers = layers.Count;
        metrics.Components = componentList.Count;
        metrics.LayersReused = written.Count(w => w.FromCache);
        metrics.LayersCompressed = layers.Count - metrics.LayersReused;
        metrics.KeptPrevious = options.PreviousPlan != null ? plan.KeptPrevious : null;
        return new BuildResult(options.Tag ?? "latest", manifestDescriptor, manifest, config, componentList, plan, algorithm, packageKind, metrics);
    }

    /// <summary>
    /// Package database, components, plan, and each layer's entries. A method of its own so that
    /// the per-entry maps it builds (the database's owners, the components of entries) are garbage
    /// before the layers are written: on a big tree they are tens of bytes per entry.
    /// </summary>
    private static (IReadOnlyList<Component> Components, ChunkPlan Plan, List<TreeEntry>[] LayerEntries, ChunkAlgorithm Algorithm, string? PackageKind)
        PlanLayers(ITree tree, BuildOptions options, IBuildProgress progress, Action<string> endPhase)
    {
        progress.Phase("Reading package databases");
        var packages = PackageDatabases.Detect(tree, progress.Warning);
        // Package grouping needs something to group by: a package database or user.component xattrs.
        var algorithm = options.Algorithm ?? (packages != null || tree.Entries.Any(e => e.GetXattr(ComponentAssigner.ComponentXattr) != null)
            ? ChunkAlgorithm.Package : ChunkAlgorithm.ContentBased);
        var components = ComponentAssigner.Assign(tree, algorithm, options.ChunkSize, algorithm == ChunkAlgorithm.Package ? packages : null);
        // The database's owner of every entry is not needed past here.
        var packageKind = packages?.Kind;
        packages = null;
        endPhase("components");

        progress.Phase("Planning layers");
        var plan = ChunkPlanner.Plan(components.Components, options.MaxLayers, options.PreviousPlan);
        if (options.PreviousPlan != null && !plan.KeptPrevious)
            progress.Warning("the previous image's layers do not fit this build's layer budget; planned afresh");
        var layerEntries = LayerContents(tree, components, plan, options.KeepSelinux);
        endPhase("plan");

        return (components.Components, plan, layerEntries, algorithm, packageKind);
    }

    /// <summary>
    /// The sorted entries of each planned layer: its components' paths plus every ancestor
    /// directory with its real owner and mode, so each layer unpacks correctly on its own.
    /// </summary>
    public static List<TreeEntry>[] LayerContents(ITree tree, ComponentMap components, ChunkPlan plan, bool keepSelinux)
    {
        var layerOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < plan.Layers.Count; i++)
            foreach (var c in plan.Layers[i].Components) layerOf[c] = i;
        var entries = tree.Entries;
        var own = new List<int>[plan.Layers.Count];
        for (int i = 0; i < own.Length; i++) own[i] = [];
        // Each layer's entries by position in the tree, and the position of every directory:
        // the tree is in path order, so a layer is sorted by position (no path kept per entry).
        var dirIndex = new Dictionary<TreeEntry, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < entries.Count; i++)
        {
            own[layerOf[components.ComponentOfEntry[i]]].Add(i);
            if (entries[i].Type == EntryType.Directory) dirIndex[entries[i]] = i;
        }

        // Then each layer on its own gets its entries' ancestors, so the set of directories
        // already added is one layer's directories at a time (a set of every path of every
        // layer, alive together, was tens of bytes per entry on a big tree).
        var result = new List<TreeEntry>[own.Length];
        for (int layer = 0; layer < own.Length; layer++)
        {
            var withParents = new List<(int Index, TreeEntry Entry)>(own[layer].Count + 16);
            // The layer's directories so far; it holds the ancestors of each, so the walk up from
            // an entry stops at the first directory already there.
            var dirs = new HashSet<TreeEntry>(ReferenceEqualityComparer.Instance);
            foreach (var i in own[layer])
            {
                var e = entries[i];
                var path = e.Path;
                var at = e;
                for (int slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1))
                {
                    // An entry in compact form knows its directory's entry; others find it by path.
                    var dir = at.DirectoryEntry ?? tree.Find(path.AsSpan(0, slash));
                    if (dir is not { Type: EntryType.Directory } || !dirIndex.TryGetValue(dir, out var d))
                        throw new TreechunkException($"{Posix.FileNames.Display(path)}: parent {Posix.FileNames.Display(path[..slash])} is not a directory in the tree");
                    if (!dirs.Add(dir)) break;
                    withParents.Add((d, Filter(dir, keepSelinux)));
                    at = dir;
                }
                // A directory may already be there as an earlier entry's ancestor; other paths are unique.
                if (e.Type != EntryType.Directory || dirs.Add(e)) withParents.Add((i, Filter(e, keepSelinux)));
            }
            withParents.Sort((a, b) => a.Index.CompareTo(b.Index));
            var sorted = new List<TreeEntry>(withParents.Count);
            foreach (var (_, e) in withParents) sorted.Add(e);
            result[layer] = sorted;
        }
        return result;
    }

    /// <summary>Annotation on the final layer listing the parent directories it created that the tree does not have.</summary>
    public const string SynthesizedDirsAnnotation = "org.treechunk.synthesized-dirs";

    private static (List<TreeEntry> Entries, List<string> Synthesized) FinalLayerContents(FinalLayer fl)
    {
        var result = new List<TreeEntry>();
        var synthesized = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in fl.Files.Entries)
        {
            foreach (var ancestor in TreePaths.Ancestors(e.Path))
            {
                if (!seen.Add(ancestor)) continue;
                if (fl.Files.Find(ancestor) is { } own) { result.Add(own); continue; }
                if (fl.ParentSource?.Find(ancestor) is { Type: EntryType.Directory } real) { result.Add(real); continue; }
                result.Add(new TreeEntry { Path = ancestor, Type = EntryType.Directory, Mode = 0x1ED });
                synthesized.Add(ancestor);
            }
            if (seen.Add(e.Path)) result.Add(e);
        }
        result.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return (result, synthesized);
    }

    private static TreeEntry Filter(TreeEntry e, bool keepSelinux) =>
        keepSelinux || e.GetXattr("security.selinux") == null
            ? e
            : e with { Xattrs = e.Xattrs.Where(x => x.Key != "security.selinux").ToList() };
}
