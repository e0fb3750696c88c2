using System.CommandLine;
using System.Text.Json.Nodes;
using Treechunk.Build;
using Treechunk.Chunking;
using Treechunk.Compose;
using Treechunk.Encapsulation;
using Treechunk.Oci;
using Treechunk.Ostree;
using Treechunk.Transports;
using Treechunk.Trees;

namespace Treechunk.Cli.Commands;

public static class ComposeCommands
{
    public static Command Create()
    {
        var compose = new Command("compose", "Build chunked OCI images from trees");
        compose.Subcommands.Add(BuildChunkedOci());
        compose.Subcommands.Add(ContainerEncapsulate());
        compose.Subcommands.Add(ComposeTree());
        compose.Subcommands.Add(BuildOstree());
        return compose;
    }

    /// <summary>The export options every build command shares (build-chunked-oci now; build-ostree and container-encapsulate later).</summary>
    public sealed class ExportOptions
    {
        public readonly Option<int> MaxLayers = new("--max-layers") { Description = "At most this many layers (default 64; above 127 Docker cannot run the image)", DefaultValueFactory = _ => BuildOptions.DefaultMaxLayers };
        public readonly Option<string?> ChunkSize = new("--chunk-size") { Description = "Target layer size for content-based/fixed chunking, and the large-file threshold (default 16M)" };
        public readonly Option<string?> ChunkAlgorithm = new("--chunk-algorithm") { Description = "package | content-based | fixed (default: package when the tree has a package database)" };
        public readonly Option<string> Compression = new("--compression") { Description = "gzip | zstd | zstd:chunked | none (zstd:chunked: each file its own zstd frame plus a table of contents, for partial pulls)", DefaultValueFactory = _ => "gzip" };
        public readonly Option<int?> CompressionLevel = new("--compression-level") { Description = "gzip 1-9 (default 6), zstd and zstd:chunked 1-22 (default 3)" };
        public readonly Option<int?> ParallelLayers = new("--parallel-layers") { Description = "Layers compressed at once (default: number of cores)" };
        public readonly Option<int> ParallelChunks = new("--parallel-chunks") { Description = "zstd only: worker threads inside one layer (default 0: one thread; any N >= 1 gives the same bytes, which differ from 0)" };
        public readonly Option<string?> CacheDir = new("--cache-dir") { Description = "Keep downloaded packages and (with --cache-layers) compressed layers here between builds" };
        public readonly Option<bool> CacheLayers = new("--cache-layers") { Description = "Reuse compressed layers from --cache-dir whose content did not change (true|false)" };
        public readonly Option<string?> Tag = new("--oci-tag") { Description = "Tag of the image in the layout (default: the reference's tag, else latest)" };
        public readonly Option<string[]> OciLabels = new("--oci-labels") { Description = "Config labels as k=v[,k=v...] (repeatable)", AllowMultipleArgumentsPerToken = false };
        public readonly Option<string[]> Label = new("--label") { Description = "One config label k=v (repeatable)" };
        public readonly Option<string[]> Annotation = new("--annotation") { Description = "One manifest annotation k=v (repeatable)" };
        public readonly Option<string?> Arch = new("--arch") { Description = "Image architecture (default: the host's, or the source image's)" };
        public readonly Option<string?> MetricsFile = new("--metrics-file") { Description = "Write phase timings, bytes in/out, layer and component counts as JSON" };
        public readonly Option<bool> KeepSelinux = new("--keep-selinux") { Description = "Keep security.selinux xattrs (dropped by default)" };
        public readonly Option<bool> Force = new("--force") { Description = "Replace an output path that is not an OCI layout/archive" };
        public readonly Option<string?> Previous = new("--previous") { Description = "The image this build updates (any reference; only its manifest is read): its layers' components stay where they were, so unchanged layers come out the same (default: the image already at the destination's tag, if any; 'none' plans afresh)" };
        public readonly Option<bool> Deltas = new("--deltas") { Description = "With --previous IMAGE: also make the deltas from it to the new image (as oci delta create does) and store them beside the new image" };
        public readonly Option<int> DeltaLevel = new("--delta-level") { Description = "zstd level of the deltas (1-22, default 19)", DefaultValueFactory = _ => Treechunk.Oci.ZstdPatch.DefaultLevel };
        public readonly Option<bool> Json = GlobalOptions.Json();

        public void AddTo(Command c)
        {
            foreach (var o in new Option[] { MaxLayers, ChunkSize, ChunkAlgorithm, Compression, CompressionLevel, ParallelLayers, ParallelChunks, CacheDir, CacheLayers, Tag, OciLabels, Label, Annotation, Arch, Previous, Deltas, DeltaLevel, MetricsFile, KeepSelinux, Force, Json })
                c.Options.Add(o);
        }

        /// <param name="output">The destination: its tag is the image's unless --oci-tag (or the treefile's oci.tag) says otherwise.</param>
        public BuildOptions ToBuildOptions(ParseResult p, string createdBy, ImageReference output, OciSection? treefile = null)
        {
            // Command-line flags win; a treefile's oci: section fills what they leave unset.
            bool Given(Option o) => p.GetResult(o) is { Implicit: false };
            var maxLayers = !Given(MaxLayers) && treefile?.MaxLayers is { } tfMax ? tfMax : p.GetValue(MaxLayers);
            if (maxLayers < 1) throw new TreechunkException($"--max-layers must be at least 1 (got {maxLayers})");
            var compression = LayerCompression.Parse(!Given(Compression) && treefile?.Compression is { } tfc ? tfc : p.GetValue(Compression)!);
            var level = p.GetValue(CompressionLevel) ?? treefile?.CompressionLevel;
            if (level is { } l) LayerCompression.ValidateLevel(compression, l);
            var labels = new Dictionary<string, string>(treefile?.Labels ?? new Dictionary<string, string>());
            foreach (var (k, v) in KeyValues.Parse(p.GetValue(OciLabels), "--oci-labels", allowCommaLists: true)) labels[k] = v;
            foreach (var (k, v) in KeyValues.Parse(p.GetValue(Label), "--label", allowCommaLists: false)) labels[k] = v;
            var parallel = p.GetValue(ParallelLayers) ?? Environment.ProcessorCount;
            if (parallel < 1) throw new TreechunkException($"--parallel-layers must be at least 1 (got {parallel})");
            var chunks = p.GetValue(ParallelChunks);
            if (chunks is < 0 or > 256) throw new TreechunkException($"--parallel-chunks must be between 0 and 256 (got {chunks})");
            var cacheDir = p.GetValue(CacheDir);
            if (p.GetValue(CacheLayers) && cacheDir == null) throw new TreechunkException("--cache-layers needs --cache-dir");
            var tag = (p.GetValue(Tag) ?? treefile?.Tag) is { } t ? Validated(t) : output.Tag;
            var architecture = p.GetValue(Arch) is { } arch ? Architectures.Find(arch).Oci : null;
            // Deltas need an old image that outlives the build: the one --previous names.
            if (p.GetValue(Deltas) && p.GetValue(Previous) is null or "none")
                throw new TreechunkException("--deltas needs --previous IMAGE (the image clients update from)");
            if (p.GetValue(DeltaLevel) is < 1 or > 22) throw new TreechunkException($"--delta-level must be between 1 and 22 (got {p.GetValue(DeltaLevel)})");
            return new BuildOptions
            {
                MaxLayers = maxLayers,
                ChunkSize = (p.GetValue(ChunkSize) ?? treefile?.ChunkSize) is { } cs ? Sizes.Parse(cs, "--chunk-size") : BuildOptions.DefaultChunkSize,
                Algorithm = (p.GetValue(ChunkAlgorithm) ?? treefile?.ChunkAlgorithm) is { } a ? ChunkAlgorithms.Parse(a) : null,
                Compression = compression,
                CompressionLevel = level,
                ParallelLayers = parallel,
                ParallelChunks = chunks,
                LayerCacheDir = p.GetValue(CacheLayers) ? Path.Join(cacheDir!, "layers") : null,
                Tag = tag,
                Labels = labels,
                Annotations = Merge(treefile?.Annotations, KeyValues.Parse(p.GetValue(Annotation), "--annotation", allowCommaLists: false)),
                Architecture = architecture,
                PreviousPlan = PreviousPlan(p.GetValue(Previous), output with { Tag = tag ?? "latest", Digest = null }, architecture),
                SourceDateEpoch = SourceDateEpoch(),
                KeepSelinux = p.GetValue(KeepSelinux),
                Force = p.GetValue(Force),
                CreatedBy = createdBy,
            };
        }

        /// <summary>
        /// The plan of the image this build updates, from its layers' component annotations: the
        /// one --previous names (an error when it cannot be read), else the one already at the
        /// destination's tag (none there, or unreadable: a fresh plan, said with --verbose).
        /// </summary>
        private static ChunkPlan? PreviousPlan(string? previous, ImageReference destination, string? architecture)
        {
            if (previous == "none") return null;
            var explicitly = previous != null;
            var reference = explicitly ? ImageReference.Parse(previous!) : destination;
            try
            {
                using var source = reference.OpenSource();
                var top = source.Resolve(reference.Tag, reference.Digest);
                var raw = source.ReadManifest(top);
                if (MediaTypes.IsIndex(top.MediaType))
                {
                    var index = OciJson.Deserialize<ImageIndex>(raw, $"index {top.Digest}");
                    top = Image.PickPlatform(index, new Platform { Architecture = architecture ?? Platforms.HostArchitecture })
                          ?? throw new TreechunkException($"{reference}: the index has no image manifest");
                    raw = source.ReadManifest(top);
                }
                var plan = LayerAnnotations.PlanOf(OciJson.Deserialize<ImageManifest>(raw, $"manifest {top.Digest}"));
                Run.Log($"previous image {reference} ({top.Digest}): {plan.Layers.Count} layers name their components");
                if (plan.Layers.Count == 0)
                {
                    if (explicitly) Run.Warn($"--previous {reference}: its layers name no components (not built by treechunk or rpm-ostree); planned afresh");
                    return null;
                }
                return plan;
            }
            catch (TreechunkException e) when (!explicitly)
            {
                Run.Log($"no previous image at {reference} ({e.Message}); planning afresh");
                return null;
            }
            catch (TreechunkException e) when (explicitly)
            {
                throw new TreechunkException($"--previous {reference}: {e.Message}", e.ExitCode, e);
            }
        }

        /// <summary>With --deltas, the deltas from --previous to the image just built at <paramref name="output"/>, stored beside it; null without.</summary>
        public JsonObject? MakeDeltas(ParseResult p, ImageReference output, BuildResult built)
        {
            if (!p.GetValue(Deltas)) return null;
            var next = output with { Tag = null, Digest = built.ManifestDescriptor.Digest };
            if (output is OciArchiveReference) next = output with { Tag = built.Tag, Digest = null };
            return DeltaCommands.CreateAndStore(p.GetValue(Previous)!, next, output with { Tag = null, Digest = null }, p.GetValue(DeltaLevel));
        }

        private static Dictionary<string, string> Merge(IReadOnlyDictionary<string, string>? first, Dictionary<string, string> then)
        {
            var result = new Dictionary<string, string>(first ?? new Dictionary<string, string>());
            foreach (var (k, v) in then) result[k] = v;
            return result;
        }

        private static string Validated(string tag)
        {
            ImageReference.ValidateTag(tag, "--oci-tag");
            return tag;
        }
    }

    /// <summary>SOURCE_DATE_EPOCH, or null when it is not set.</summary>
    public static long? SourceDateEpoch()
    {
        var text = Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH");
        if (string.IsNullOrEmpty(text)) return null;
        if (!long.TryParse(text, out var epoch) || epoch < 0)
            throw new TreechunkException($"SOURCE_DATE_EPOCH '{text}' is not a non-negative number of seconds");
        return epoch;
    }

    private static Command BuildChunkedOci()
    {
        var cmd = new Command("build-chunked-oci", """
            Rechunk a root directory or an existing image into a chunked OCI image.

            Examples:
              treechunk compose build-chunked-oci --rootfs ./rootfs --output oci:./image:latest
              treechunk compose build-chunked-oci --from oci:./old:1.0 --output oci-archive:./new.tar --max-layers 32 --compression zstd
            """);
        var rootfs = new Option<string?>("--rootfs") { Description = "Root filesystem directory to package" };
        var from = new Option<string?>("--from") { Description = "Image to flatten and rechunk (oci:PATH[:TAG], oci-archive:FILE[:TAG])" };
        var output = new Option<string>("--output") { Description = "Destination: oci:PATH[:TAG] or oci-archive:FILE[:TAG]", Required = true };
        var export = new ExportOptions();
        cmd.Options.Add(rootfs);
        cmd.Options.Add(from);
        cmd.Options.Add(output);
        export.AddTo(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var rootfsPath = p.GetValue(rootfs);
            var fromRef = p.GetValue(from);
            if ((rootfsPath == null) == (fromRef == null))
                throw new TreechunkException("give exactly one of --rootfs DIR or --from IMAGE");
            var dest = ImageReference.Parse(p.GetValue(output)!, ReferenceRole.Destination);
            bool verbose = p.GetValue(GlobalOptions.Verbose);
            bool json = p.GetValue(export.Json);
            var options = export.ToBuildOptions(p, "treechunk compose build-chunked-oci", dest);
            WarnAboutDepth(options);
            BuildWarmup.Start();
            BuildResult result;
            if (rootfsPath != null)
            {
                var scanClock = System.Diagnostics.Stopwatch.StartNew();
                using var tree = DirectoryTree.Open(rootfsPath, Run.Warn);
                var scanSeconds = scanClock.Elapsed.TotalSeconds;
                using var destination = Run.OpenDestination(dest, options.Force);
                result = BuildProgress.Run(verbose, json, progress => ChunkedImageBuilder.Build(tree, destination, options, progress));
                result.Metrics.ScanSeconds = scanSeconds;
            }
            else
            {
                using var source = Run.OpenImage(fromRef!);
                using var destination = Run.OpenDestination(dest, options.Force);
                result = BuildProgress.Run(verbose, json, progress => ImageRechunk.Rechunk(source, destination, options, progress, Run.Warn));
            }
            var deltas = export.MakeDeltas(p, dest, result);
            if (p.GetValue(export.MetricsFile) is { } metricsFile) WriteMetrics(metricsFile, result, deltas);
            Report(dest, result, json, deltas);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static void WarnAboutDepth(BuildOptions options)
    {
        if (options.MaxLayers > BuildOptions.DockerLayerLimit)
            Run.Warn($"--max-layers {options.MaxLayers} is above {BuildOptions.DockerLayerLimit}: Docker (overlay2) cannot run images that deep");
    }

    private static Command ContainerEncapsulate()
    {
        var cmd = new Command("container-encapsulate", """
            Export an OSTree commit as a chunked OCI image that imports back to the same commit.

            The commit object travels in a small last layer; labels ostree.commit,
            ostree.final-diffid, version and (for trees with a kernel) containers.bootc=1 are set.
            SELinux labels are always kept: they are part of the commit's checksums.

            Examples:
              treechunk compose container-encapsulate --repo ./repo fedora/x86_64/coreos oci:./image:latest
              treechunk compose container-encapsulate --repo ./repo 3f2a... oci-archive:./os.tar --compression zstd
            """);
        var repo = new Option<string>("--repo") { Description = "OSTree repository", Required = true };
        var rev = new Argument<string>("REF") { Description = "Ref or commit checksum" };
        var dest = new Argument<string>("DEST") { Description = "oci:PATH[:TAG] or oci-archive:FILE[:TAG]" };
        var export = new ExportOptions();
        cmd.Options.Add(repo);
        cmd.Arguments.Add(rev);
        cmd.Arguments.Add(dest);
        export.AddTo(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var output = ImageReference.Parse(p.GetValue(dest)!, ReferenceRole.Destination);
            var r = OstreeRepo.Open(p.GetValue(repo)!);
            var options = export.ToBuildOptions(p, "treechunk compose container-encapsulate", output);
            WarnAboutDepth(options);
            BuildWarmup.Start();
            bool json = p.GetValue(export.Json);
            using var destination = Run.OpenDestination(output, options.Force);
            var result = BuildProgress.Run(p.GetValue(GlobalOptions.Verbose), json,
                progress => OstreeImageExport.Export(r, p.GetValue(rev)!, destination, options, progress));
            var deltas = export.MakeDeltas(p, output, result);
            if (p.GetValue(export.MetricsFile) is { } metricsFile) WriteMetrics(metricsFile, result, deltas);
            Report(output, result, json, deltas);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command ComposeTree()
    {
        var cmd = new Command("tree", """
            Compose a treefile into an OSTree commit: install its packages with the distribution's
            package manager (apt via mmdebstrap for *.sources repos, dnf for *.repo repos), apply
            add-files, remove-files, units and postprocess, and commit at the treefile's ref.

            Example:
              treechunk compose tree --repo ./repo examples/debian-minimal/treefile.yaml
            """);
        var repo = new Option<string>("--repo") { Description = "OSTree repository (created as archive if missing)", Required = true };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "Keep downloaded packages here between composes" };
        var arch = new Option<string?>("--arch") { Description = "Package architecture (default: the host's)" };
        var metrics = new Option<string?>("--metrics-file") { Description = "Write phase timings and counts as JSON" };
        var json = GlobalOptions.Json();
        var treefile = new Argument<string>("TREEFILE") { Description = "treefile.yaml" };
        foreach (var o in new Option[] { repo, cacheDir, arch, metrics, json }) cmd.Options.Add(o);
        cmd.Arguments.Add(treefile);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var tf = Treefile.Load(p.GetValue(treefile)!);
            bool verbose = p.GetValue(GlobalOptions.Verbose), asJson = p.GetValue(json);
            var options = ComposeOptionsFrom(p.GetValue(repo)!, p.GetValue(cacheDir), p.GetValue(arch), verbose);
            var result = BuildProgress.Run(verbose, asJson, progress => ComposeRunner.ComposeTree(tf, PackageBackends.For(tf), options, progress));
            if (p.GetValue(metrics) is { } file) WriteComposeMetrics(file, result, null, null);
            if (asJson)
                Run.PrintJson(new JsonObject { ["commit"] = result.Commit, ["ref"] = result.Ref, ["version"] = result.Version, ["packages"] = result.Packages });
            else
                Console.WriteLine($"{result.Ref} {result.Commit}{(result.Version != null ? " version " + result.Version : "")} ({result.Packages} packages, {result.Files} entries)");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command BuildOstree()
    {
        var cmd = new Command("build-ostree", """
            Compose a treefile into an OSTree commit and export it as a chunked OCI image in one step.
            The treefile's oci: section sets tag, labels, annotations and chunking; flags override it.

            Examples:
              treechunk compose build-ostree --repo=./repo --output-oci=./oci-image treefile.yaml
              treechunk compose build-ostree --repo=./repo --output-oci=./oci-image --oci-tag=latest \
                  --oci-labels="org.example.version=1.0.0" --chunk-size=10M --cache-dir=./cache --cache-layers treefile.yaml
            """);
        var repo = new Option<string>("--repo") { Description = "OSTree repository (created as archive if missing)", Required = true };
        var outputOci = new Option<string>("--output-oci") { Description = "Destination: a layout directory, oci:PATH[:TAG] or oci-archive:FILE[:TAG]", Required = true };
        var treefile = new Argument<string>("TREEFILE") { Description = "treefile.yaml" };
        var export = new ExportOptions();
        cmd.Options.Add(repo);
        cmd.Options.Add(outputOci);
        export.AddTo(cmd);
        cmd.Arguments.Add(treefile);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var tf = Treefile.Load(p.GetValue(treefile)!);
            var output = ImageReference.Parse(p.GetValue(outputOci)!, ReferenceRole.Destination);
            bool verbose = p.GetValue(GlobalOptions.Verbose), asJson = p.GetValue(export.Json);
            // A tag written in the output reference beats the treefile's oci.tag (--oci-tag beats both).
            var buildOptions = export.ToBuildOptions(p, "treechunk compose build-ostree", output, tf.Oci);
            if (p.GetValue(export.Tag) == null && output.Tag != null) buildOptions = buildOptions with { Tag = output.Tag };
            WarnAboutDepth(buildOptions);
            using var destination = Run.OpenDestination(output, buildOptions.Force);
            var options = ComposeOptionsFrom(p.GetValue(repo)!, p.GetValue(export.CacheDir), p.GetValue(export.Arch), verbose);
            var (compose, image) = BuildProgress.Run(verbose, asJson,
                progress => ComposeRunner.BuildOstree(tf, PackageBackends.For(tf), options, destination, buildOptions, progress));
            var deltas = export.MakeDeltas(p, output, image);
            if (p.GetValue(export.MetricsFile) is { } file) WriteComposeMetrics(file, compose, image, deltas);
            if (!asJson) Console.WriteLine($"{compose.Ref} {compose.Commit}{(compose.Version != null ? " version " + compose.Version : "")} ({compose.Packages} packages)");
            Report(output, image, asJson, deltas);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static ComposeOptions ComposeOptionsFrom(string repo, string? cacheDir, string? arch, bool verbose) => new()
    {
        RepoPath = repo,
        CacheDir = cacheDir,
        Architecture = arch != null ? Architectures.Find(arch) : null,
        SourceDateEpoch = SourceDateEpoch(),
        Output = verbose ? line => Console.Error.WriteLine("  " + line) : null,
        Warn = m => Run.Warn(m),
    };

    private static void WriteComposeMetrics(string file, ComposeResult compose, BuildResult? image, JsonObject? deltas)
    {
        var phases = new JsonObject();
        foreach (var (k, v) in compose.PhaseSeconds) phases[k] = v;
        if (image != null) foreach (var (k, v) in image.Metrics.PhaseSeconds) phases[k] = v;
        var node = new JsonObject
        {
            ["phases"] = phases,
            ["commit"] = compose.Commit,
            ["version"] = compose.Version,
            ["packages"] = compose.Packages,
            ["packages_from_cache"] = compose.PackagesFromCache,
            ["files"] = compose.Files,
        };
        if (image != null)
        {
            node["bytes_in"] = image.Metrics.BytesIn;
            node["bytes_out"] = image.Metrics.BytesOut;
            node["layers"] = image.Metrics.Layers;
            node["layers_reused"] = image.Metrics.LayersReused;
            node["layers_compressed"] = image.Metrics.LayersCompressed;
            node["kept_previous"] = image.Metrics.KeptPrevious;
            node["components"] = image.Metrics.Components;
            node["manifest_digest"] = image.ManifestDescriptor.Digest;
        }
        if (deltas != null) node["deltas"] = DeltaSummary(deltas);
        Treechunk.IO.AtomicFile.WriteText(file, Run.JsonText(node) + "\n");
    }

    /// <summary>What the metrics file says of the deltas: their artifact and sizes (the --json output has every delta).</summary>
    private static JsonObject DeltaSummary(JsonObject deltas) => new()
    {
        ["artifact"] = (string?)deltas["artifact"],
        ["deltas"] = deltas["deltas"]!.AsArray().Count,
        ["new_layer_bytes"] = (long)deltas["new_layer_bytes"]!,
        ["delta_bytes"] = (long)deltas["delta_bytes"]!,
        ["download_bytes"] = (long)deltas["download_bytes"]!,
        ["seconds"] = (double)deltas["seconds"]!,
    };

    public static void WriteMetrics(string file, BuildResult r, JsonObject? deltas = null)
    {
        var m = r.Metrics;
        var phases = new JsonObject();
        if (m.ScanSeconds is { } scan) phases["scan"] = Math.Round(scan, 3);
        foreach (var (k, v) in m.PhaseSeconds) phases[k] = v;
        static double? Mb(long? bytes) => bytes is { } b ? Math.Round(b / 1048576.0, 1) : null;
        var memory = new JsonObject();
        foreach (var (k, v) in m.PhaseMemory)
        {
            memory[k] = new JsonObject { ["heap_mb"] = Mb(v.Heap), ["gc_committed_mb"] = Mb(v.Committed), ["rss_mb"] = Mb(v.Rss), ["peak_rss_mb"] = Mb(v.PeakRss) };
            if (v.Live is { } live) memory[k]!["live_mb"] = Mb(live);
            if (v.Collections is { } gcs) memory[k]!["collections"] = new JsonArray(gcs.Select(c => (JsonNode)c).ToArray());
            memory[k]!["allocated_mb"] = Mb(v.Allocated);
        }
        var node = new JsonObject
        {
            ["phases"] = phases,
            ["memory_after"] = memory,
            ["first_layer_after_start"] = m.FirstLayerAfterStart,
            ["bytes_in"] = m.BytesIn,
            ["bytes_out"] = m.BytesOut,
            ["uncompressed_bytes"] = m.UncompressedBytes,
            ["files"] = m.Files,
            ["layers"] = m.Layers,
            ["components"] = m.Components,
            ["layers_reused"] = m.LayersReused,
            ["layers_compressed"] = m.LayersCompressed,
            ["kept_previous"] = m.KeptPrevious,
            ["algorithm"] = ChunkAlgorithms.Name(r.Algorithm),
            ["package_database"] = r.PackageDatabase,
            ["manifest_digest"] = r.ManifestDescriptor.Digest,
        };
        if (deltas != null) node["deltas"] = DeltaSummary(deltas);
        Treechunk.IO.AtomicFile.WriteText(file, Run.JsonText(node) + "\n");
    }

    private static void Report(ImageReference dest, BuildResult r, bool json, JsonObject? deltas = null)
    {
        var tag = r.Tag;
        if (json)
        {
            Run.PrintJson(new JsonObject
            {
                ["output"] = dest.ToString(),
                ["tag"] = tag,
                ["manifest_digest"] = r.ManifestDescriptor.Digest,
                ["algorithm"] = ChunkAlgorithms.Name(r.Algorithm),
                ["package_database"] = r.PackageDatabase,
                ["components"] = r.Metrics.Components,
                ["files"] = r.Metrics.Files,
                ["bytes_in"] = r.Metrics.BytesIn,
                ["bytes_out"] = r.Metrics.BytesOut,
                ["kept_previous"] = r.Metrics.KeptPrevious,
                ["layers"] = new JsonArray(r.Manifest.Layers.Select((l, i) => (JsonNode)new JsonObject
                {
                    ["digest"] = l.Digest,
                    ["size"] = l.Size,
                    ["diff_id"] = r.Config.RootFs.DiffIds[i],
                    ["components"] = new JsonArray(LayerAnnotations.Components(l).Select(c => (JsonNode)JsonValue.Create(c)!).ToArray()),
                }).ToArray()),
                ["deltas"] = deltas,
            });
            return;
        }
        Console.WriteLine($"{dest.Transport}:{dest.Location}:{tag} {r.ManifestDescriptor.Digest}");
        Console.WriteLine($"  {r.Metrics.Layers} layers, {Sizes.Format(r.Metrics.BytesOut)} compressed from {Sizes.Format(r.Metrics.BytesIn)} in {r.Metrics.Files} entries; " +
                          $"{r.Metrics.Components} components ({ChunkAlgorithms.Name(r.Algorithm)}{(r.PackageDatabase != null ? ", " + r.PackageDatabase : "")})");
        if (deltas != null)
            Console.WriteLine($"  deltas from {deltas["old"]}: {deltas["deltas"]!.AsArray().Count}, {Sizes.Format((long)deltas["delta_bytes"]!)} for {Sizes.Format((long)deltas["new_layer_bytes"]!)} of new layers, at {deltas["stored_at"]}");
    }
}
