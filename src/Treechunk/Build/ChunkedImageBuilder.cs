using System.Diagnostics;
using Treechunk.Chunking;
using Treechunk.Oci;
using Treechunk.Packages;
using Treechunk.Trees;

namespace Treechunk.Build;

public sealed record BuildResult(
    Descriptor ManifestDescriptor,
    ImageManifest Manifest,
    ImageConfig Config,
    ComponentMap Components,
    ChunkPlan Plan,
    ChunkAlgorithm Algorithm,
    string? PackageDatabase,
    BuildMetrics Metrics);

public sealed class BuildMetrics
{
    public Dictionary<string, double> PhaseSeconds { get; } = new();
    public long BytesIn { get; set; }
    public long BytesOut { get; set; }
    public long UncompressedBytes { get; set; }
    public int Files { get; set; }
    public int Layers { get; set; }
    public int Components { get; set; }
    /// <summary>Layers taken from the layer cache without compressing.</summary>
    public int LayersReused { get; set; }
    public int LayersCompressed { get; set; }
}

/// <summary>
/// The pipeline from a tree to a chunked image: components -> plan -> layers (compressed in
/// parallel) -> config, manifest, index. Each step is its own class; this one only sequences them.
/// </summary>
public static class ChunkedImageBuilder
{
    public static BuildResult Build(ITree tree, ImageReference output, BuildOptions options, IBuildProgress? progress = null)
    {
        progress ??= NullProgress.Instance;
        var metrics = new BuildMetrics();
        var clock = Stopwatch.StartNew();
        void EndPhase(string name) { metrics.PhaseSeconds[name] = Math.Round(clock.Elapsed.TotalSeconds, 3); clock.Restart(); }

        if (options.MaxLayers < 1) throw new TreechunkException("--max-layers must be at least 1");
        var level = options.CompressionLevel ?? LayerCompression.DefaultLevel(options.Compression);
        LayerCompression.ValidateLevel(options.Compression, level);
        if (options.ParallelLayers < 1) throw new TreechunkException("--parallel-layers must be at least 1");

        progress.Phase("Reading package databases");
        var packages = PackageDatabases.Detect(tree, progress.Warning);
        // Package grouping needs something to group by: a package database or user.component xattrs.
        var algorithm = options.Algorithm ?? (packages != null || tree.Entries.Any(e => e.GetXattr(ComponentAssigner.ComponentXattr) != null)
            ? ChunkAlgorithm.Package : ChunkAlgorithm.ContentBased);
        var components = ComponentAssigner.Assign(tree, algorithm, options.ChunkSize, algorithm == ChunkAlgorithm.Package ? packages : null);
        EndPhase("components");

        progress.Phase("Planning layers");
        var plan = ChunkPlanner.Plan(components.Components, options.MaxLayers);
        var layerEntries = LayerContents(tree, components, plan, options.KeepSelinux);
        EndPhase("plan");

        // Write into the target layout directly, or into a temp layout that becomes the archive.
        TempDirectory? staging = null;
        string layoutDir = output.Path;
        if (output.Transport == Transport.OciArchive)
        {
            staging = PrepareArchiveStaging(output.Path, options.Force);
            layoutDir = staging.Path;
        }
        try
        {
            var writer = OciLayoutWriter.OpenOrCreate(layoutDir, options.Force && output.Transport == Transport.OciLayout);
            progress.Phase("Writing layers");
            progress.LayersStarted(plan.Layers.Count, plan.Layers.Sum(l => l.Size));
            var settings = new LayerSettings(options.Compression, level, options.SourceDateEpoch)
            {
                ZstdWorkers = options.ParallelChunks,
                Cache = options.LayerCacheDir != null ? new LayerCache(options.LayerCacheDir) : null,
            };
            var written = new WrittenLayer[plan.Layers.Count];
            // Largest layers first, handed out one at a time from a shared counter (chunked
            // partitioning would give one worker several big layers), so the workers finish together.
            var order = new List<int>(plan.Layers.Count);
            for (int i = 0; i < plan.Layers.Count; i++) order.Add(i);
            order.Sort((a, b) => plan.Layers[b].Size.CompareTo(plan.Layers[a].Size) is var c && c != 0 ? c : a.CompareTo(b));
            int next = -1;
            void Worker(int _, ParallelLoopState state)
            {
                // A failed layer stops the others from taking new work (the error is reported as is).
                for (int k; !state.ShouldExitCurrentIteration && (k = Interlocked.Increment(ref next)) < order.Count;)
                {
                    var i = order[k];
                    written[i] = LayerWriter.Write(tree, layerEntries[i], writer.BlobsDir, settings);
                    progress.LayerDone(i, written[i].UncompressedSize);
                }
            }
            Parallel.For(0, Math.Min(options.ParallelLayers, order.Count), new ParallelOptions { MaxDegreeOfParallelism = options.ParallelLayers }, Worker);
            WrittenLayer? finalLayer = null;
            List<string> synthesized = [];
            if (options.FinalLayer is { } fl)
            {
                List<TreeEntry> entries;
                (entries, synthesized) = FinalLayerContents(fl);
                finalLayer = LayerWriter.Write(fl.Files, entries, writer.BlobsDir, settings with { Cache = null });
            }
            EndPhase("write");

            progress.Phase("Writing manifest");
            var created = DateTimeOffset.FromUnixTimeSeconds(options.SourceDateEpoch).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");
            var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
            if (options.BaseConfig?.Labels != null) foreach (var (k, v) in options.BaseConfig.Labels) labels[k] = v;
            foreach (var (k, v) in options.Labels) labels[k] = v;
            if (finalLayer != null && options.FinalLayer!.DiffIdLabel is { } diffIdLabel) labels[diffIdLabel] = finalLayer.DiffId;
            var runtime = options.BaseConfig ?? new ContainerConfig();
            runtime.Labels = labels.Count > 0 ? labels : null;
            var config = new ImageConfig
            {
                Created = created,
                Architecture = Platforms.Normalize(options.Architecture),
                Os = "linux",
                Config = runtime,
                RootFs = new RootFs { DiffIds = written.Append(finalLayer).OfType<WrittenLayer>().Select(w => w.DiffId).ToList() },
                History = plan.Layers.Select(l => string.Join(",", l.Components))
                    .Append(options.FinalLayer?.Component).OfType<string>()
                    .Select(comment => new HistoryEntry { Created = created, CreatedBy = options.CreatedBy, Comment = comment })
                    .ToList(),
            };
            var componentByName = components.Components.ToDictionary(c => c.Name, StringComparer.Ordinal);
            var configDescriptor = writer.WriteBlob(OciJson.Serialize(config), MediaTypes.ImageConfig);
            var manifest = new ImageManifest
            {
                Config = configDescriptor,
                Layers = written.Select((w, i) =>
                {
                    var names = string.Join(",", plan.Layers[i].Components.OrderBy(n => n, StringComparer.Ordinal));
                    w.Descriptor.Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal)
                    {
                        [Annotations.Components] = names,
                        [Annotations.OstreeComponents] = names,
                        [Annotations.ComponentStats] = ComponentStats.Format(plan.Layers[i].Components, componentByName),
                    };
                    return w.Descriptor;
                }).Concat(finalLayer == null ? [] : [FinalDescriptor(finalLayer, options.FinalLayer!, synthesized)]).ToList(),
                Annotations = options.Annotations.Count > 0
                    ? new SortedDictionary<string, string>(options.Annotations.ToDictionary(), StringComparer.Ordinal)
                    : null,
            };
            var manifestDescriptor = writer.WriteBlob(OciJson.Serialize(manifest), MediaTypes.ImageManifest);
            writer.Tag(manifestDescriptor, options.Tag ?? output.Tag ?? "latest",
                new Platform { Architecture = config.Architecture, Os = "linux" });
            if (staging != null) OciArchive.Pack(staging.Path, output.Path);
            EndPhase("finalize");

            metrics.BytesIn = tree.Entries.Sum(e => e.Size);
            metrics.BytesOut = written.Sum(w => w.Descriptor.Size) + (finalLayer?.Descriptor.Size ?? 0);
            metrics.UncompressedBytes = written.Sum(w => w.UncompressedSize) + (finalLayer?.UncompressedSize ?? 0);
            metrics.Files = tree.Entries.Count;
            metrics.Layers = written.Length + (finalLayer != null ? 1 : 0);
            metrics.Components = components.Components.Count;
            metrics.LayersReused = written.Count(w => w.FromCache);
            metrics.LayersCompressed = written.Length - metrics.LayersReused + (finalLayer != null ? 1 : 0);
            return new BuildResult(manifestDescriptor, manifest, config, components, plan, algorithm, packages?.Kind, metrics);
        }
        finally
        {
            staging?.Dispose();
        }
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
        var paths = new HashSet<string>[plan.Layers.Count];
        var result = new List<TreeEntry>[plan.Layers.Count];
        for (int i = 0; i < result.Length; i++) { result[i] = []; paths[i] = new HashSet<string>(StringComparer.Ordinal); }

        foreach (var e in tree.Entries)
        {
            int layer = layerOf[components.ComponentOfPath[e.Path]];
            foreach (var ancestor in TreePaths.Ancestors(e.Path))
            {
                if (!paths[layer].Add(ancestor)) continue;
                var dir = tree.Find(ancestor);
                if (dir is not { Type: EntryType.Directory })
                    throw new TreechunkException($"{e.Path}: parent {ancestor} is not a directory in the tree");
                result[layer].Add(Filter(dir, keepSelinux));
            }
            if (paths[layer].Add(e.Path)) result[layer].Add(Filter(e, keepSelinux));
        }
        foreach (var list in result) list.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
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

    private static Descriptor FinalDescriptor(WrittenLayer layer, FinalLayer fl, List<string> synthesized)
    {
        layer.Descriptor.Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [Annotations.Components] = fl.Component,
            [Annotations.OstreeComponents] = fl.Component,
        };
        if (synthesized.Count > 0) layer.Descriptor.Annotations[SynthesizedDirsAnnotation] = string.Join(",", synthesized);
        return layer.Descriptor;
    }

    private static TreeEntry Filter(TreeEntry e, bool keepSelinux) =>
        keepSelinux || e.GetXattr("security.selinux") == null
            ? e
            : e with { Xattrs = e.Xattrs.Where(x => x.Key != "security.selinux").ToList() };

    private static TempDirectory PrepareArchiveStaging(string file, bool force)
    {
        var parent = Path.GetDirectoryName(Path.GetFullPath(file))!;
        if (!Directory.Exists(parent)) throw new TreechunkException($"output directory {parent} does not exist");
        if (Directory.Exists(file)) throw new TreechunkException($"output {file} is a directory, not an oci-archive file");
        var staging = TempDirectory.Create("archive", parent);
        try
        {
            if (File.Exists(file) && !force)
            {
                if (!OciArchive.LooksLikeArchive(file))
                    throw new TreechunkException($"output {file} exists and is not an oci-archive (use --force to replace it)");
                using var existing = OciArchive.Unpack(file);
                foreach (var f in Directory.EnumerateFiles(existing.Path, "*", SearchOption.AllDirectories))
                {
                    var target = Path.Join(staging.Path, Path.GetRelativePath(existing.Path, f));
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    File.Move(f, target);
                }
            }
            return staging;
        }
        catch
        {
            staging.Dispose();
            throw;
        }
    }
}
