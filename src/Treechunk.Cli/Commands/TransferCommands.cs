using System.CommandLine;
using System.Text.Json.Nodes;
using Treechunk.Chunking;
using Treechunk.Delta;
using Treechunk.Oci;
using Treechunk.Registry;
using Treechunk.Transports;

namespace Treechunk.Cli.Commands;

/// <summary>oci copy, push, pull, tags: moving images between any two references.</summary>
public static class TransferCommands
{
    private const string ImageHelp = "Image: docker://HOST/REPO[:TAG|@DIGEST], oci:PATH[:TAG|@DIGEST], oci-archive:FILE[:TAG|@DIGEST], dir:CHUNK_DIR, or a bare path";

    public static void AddTo(Command oci)
    {
        oci.Subcommands.Add(Copy());
        oci.Subcommands.Add(Push());
        oci.Subcommands.Add(Pull());
        oci.Subcommands.Add(Tags());
    }

    /// <summary>Options every transfer has.</summary>
    private sealed class TransferOptions
    {
        public readonly Option<string?> Platform = new("--platform") { Description = "From an index, copy only the image for OS/ARCH[/VARIANT] (default: the whole index)" };
        public readonly Option<int> Parallel = new("--parallel") { Description = "Blobs transferred at once (default 6, as skopeo)", DefaultValueFactory = _ => 6 };
        public readonly Option<string?> UploadChunkSize = new("--upload-chunk-size") { Description = "Upload to registries in resumable PATCH chunks of this size (e.g. 16M; default: registries.conf, else one request per blob)" };
        public readonly Option<bool> Force = new("--force") { Description = "Replace a local destination path that is not an OCI layout/archive" };
        public readonly Option<bool> NoPartial = new("--no-partial") { Description = "Download zstd:chunked layers whole, even when the destination layout already has some of their files" };
        public readonly Option<bool> NoDeltas = new("--no-deltas") { Description = "Do not rebuild layers from the image's delta artifact (oci delta create), even when the destination layout has the old layers it needs" };
        public readonly Option<string?> MetricsFile = new("--metrics-file") { Description = "Write the transfer's counts as JSON (blobs, bytes received, bytes fetched per partially pulled layer)" };
        public readonly Option<bool> Json = GlobalOptions.Json();

        public void AddTo(Command c)
        {
            foreach (var o in new Option[] { Platform, Parallel, UploadChunkSize, NoPartial, NoDeltas, MetricsFile, Force, Json }) c.Options.Add(o);
        }
    }

    /// <summary>The seed's way of naming a registry image: --registry, --repository, --tag or --digest.</summary>
    internal sealed class SeedReference
    {
        public readonly Option<string?> Registry = new("--registry") { Description = "Registry host[:port] (with --repository)" };
        public readonly Option<string?> Repository = new("--repository") { Description = "Repository, e.g. example/myapp" };
        public readonly Option<string?> Tag = new("--tag") { Description = "Tag (default latest)" };
        public readonly Option<string?> Digest = new("--digest") { Description = "Manifest digest (pull only)" };

        public void AddTo(Command c, bool digest)
        {
            c.Options.Add(Registry);
            c.Options.Add(Repository);
            c.Options.Add(Tag);
            if (digest) c.Options.Add(Digest);
        }

        /// <summary>
        /// The image a command names either by an IMAGE argument or by these flags (exactly one of
        /// the two), checked to parse, and whether the flags named it.
        /// </summary>
        public (string Text, bool FromFlags) ImageOrFlags(ParseResult p, Argument<string?> image)
        {
            var flags = From(p);
            var text = (p.GetValue(image), flags) switch
            {
                ({ } t, null) => t,
                (null, { } f) => f.ToString(),
                (null, null) => throw new TreechunkException("name the image: an image reference or --registry/--repository/--tag"),
                _ => throw new TreechunkException("give an image reference or --registry/--repository/--tag, not both"),
            };
            ImageReference.Parse(text); // a malformed reference is bad input, found before anything is asked of the network
            return (text, flags != null);
        }

        /// <summary>The docker:// reference the flags name, or null when none is given.</summary>
        public DockerReference? From(ParseResult p)
        {
            var registry = p.GetValue(Registry);
            var repository = p.GetValue(Repository);
            if (registry == null && repository == null) return null;
            if (registry == null || repository == null) throw new TreechunkException("give --registry and --repository together");
            var host = RegistryName.ParseHost(registry);
            var text = $"{host}/{repository}";
            var tag = p.GetValue(Tag);
            var digest = p.GetResult(Digest) != null ? p.GetValue(Digest) : null;
            if (tag != null && digest != null) throw new TreechunkException("give --tag or --digest, not both");
            var (name, _, _) = RegistryName.Parse(text, "--registry/--repository");
            if (tag != null && !RegistryName.ValidTag(tag)) throw new TreechunkException($"invalid --tag '{tag}'");
            if (digest != null) Oci.Digest.Hex(digest);
            return new DockerReference(name) { Tag = tag, Digest = digest };
        }
    }

    private static Command Copy()
    {
        var cmd = new Command("copy", """
            Copy an image, or an index with every manifest it lists, from any image reference to
            any other, like skopeo copy. Manifests, indexes and configs are copied as their stored
            bytes, so the manifest digest is kept; blobs the destination already has are not
            written again (a registry is asked first); every copied blob is checked against its
            digest as it streams, and nothing is kept of a blob whose bytes are wrong.

            The destination's tag is the one it names, else the source's, else latest.

            Examples:
              treechunk oci copy oci:./image:v1 oci-archive:./image.tar
              treechunk oci copy oci-archive:./image.tar:v1 docker://registry.example:5000/os/base:v1
              treechunk oci copy --platform linux/arm64 docker://quay.io/example/multi oci:./arm64-only
            """);
        var source = new Argument<string>("SOURCE") { Description = ImageHelp };
        var destination = new Argument<string>("DESTINATION") { Description = "docker://HOST/REPO[:TAG], oci:PATH[:TAG] or oci-archive:FILE[:TAG] (created when missing; other images in it are kept)" };
        var options = new TransferOptions();
        cmd.Arguments.Add(source);
        cmd.Arguments.Add(destination);
        options.AddTo(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
            Transfer(p, options, ImageReference.Parse(p.GetValue(source)!), ImageReference.Parse(p.GetValue(destination)!, ReferenceRole.Destination))));
        return cmd;
    }

    private static Command Push()
    {
        var cmd = new Command("push", """
            Push an image to a registry: blobs the registry has are never sent again (HEAD
            first), blobs it has in another repository are mounted, the rest are uploaded in
            parallel (in resumable chunks with --upload-chunk-size), the manifest last.

            Examples:
              treechunk oci push ./oci-image docker://quay.io/example/myapp:latest
              treechunk oci push --registry=quay.io --repository=example/myapp --tag=latest ./oci-image
              echo "$PASSWORD" | treechunk oci push --username myuser --password-stdin ./oci-image docker://registry.example/app:1
            """);
        var image = new Argument<string>("IMAGE") { Description = "The image to push (oci:PATH[:TAG], oci-archive:FILE[:TAG], a bare path, or any reference)" };
        var dest = new Argument<string?>("DESTINATION") { Description = "docker://HOST/REPO[:TAG] (or give --registry/--repository/--tag)", Arity = ArgumentArity.ZeroOrOne };
        var seed = new SeedReference();
        var options = new TransferOptions();
        cmd.Arguments.Add(image);
        cmd.Arguments.Add(dest);
        seed.AddTo(cmd, digest: false);
        options.AddTo(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var src = ImageReference.Parse(p.GetValue(image)!);
            ImageReference dst = (p.GetValue(dest), seed.From(p)) switch
            {
                ({ } text, null) => ImageReference.Parse(text, ReferenceRole.Destination),
                (null, { } flags) => flags,
                (null, null) => throw new TreechunkException("name the destination: docker://HOST/REPO[:TAG] or --registry/--repository/--tag"),
                _ => throw new TreechunkException("give the destination as docker://HOST/REPO[:TAG] or as --registry/--repository/--tag, not both"),
            };
            if (dst is not DockerReference) throw new TreechunkException($"push goes to a registry (docker://HOST/REPO[:TAG]), not {dst} (use oci copy)");
            return Transfer(p, options, src, dst);
        }));
        return cmd;
    }

    private static Command Pull()
    {
        var cmd = new Command("pull", """
            Pull an image from a registry into a local layout or archive. Every blob is checked
            against its digest while it streams and before it is kept; blobs the destination
            already has are not fetched again; a cut download resumes with Range.

            Examples:
              treechunk oci pull docker://quay.io/example/myapp:latest ./oci-image
              treechunk oci pull --registry=quay.io --repository=example/myapp --digest=sha256:... ./oci-image
            """);
        var first = new Argument<string>("SOURCE_OR_DESTINATION") { Description = "docker://HOST/REPO[:TAG|@DIGEST] then the destination; or with --registry/--repository only the destination" };
        var second = new Argument<string?>("DESTINATION") { Description = "Local destination: oci:PATH[:TAG], oci-archive:FILE[:TAG] or a bare path", Arity = ArgumentArity.ZeroOrOne };
        var seed = new SeedReference();
        var options = new TransferOptions();
        cmd.Arguments.Add(first);
        cmd.Arguments.Add(second);
        seed.AddTo(cmd, digest: true);
        options.AddTo(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var flags = seed.From(p);
            var (srcText, dstText) = (p.GetValue(first)!, p.GetValue(second));
            ImageReference src, dst;
            if (flags != null)
            {
                if (dstText != null) throw new TreechunkException("with --registry/--repository give only the destination");
                (src, dst) = (flags, ImageReference.Parse(srcText, ReferenceRole.Destination));
            }
            else
            {
                if (dstText == null) throw new TreechunkException("name the source (docker://HOST/REPO[:TAG|@DIGEST] or --registry/--repository) and the destination");
                (src, dst) = (ImageReference.Parse(srcText), ImageReference.Parse(dstText, ReferenceRole.Destination));
            }
            if (src is not DockerReference) throw new TreechunkException($"pull comes from a registry (docker://HOST/REPO[:TAG|@DIGEST]), not {src} (use oci copy)");
            return Transfer(p, options, src, dst);
        }));
        return cmd;
    }

    /// <summary>
    /// The seed's chunk commands: a chunk directory (skopeo's dir: format) filled from a registry,
    /// sent to one, merged into an image, or split from one. Each is a copy with the chunk
    /// directory on one side; upload and merge verify every chunk first.
    /// </summary>
    public static void AddChunkCommands(Command chunk)
    {
        chunk.Subcommands.Add(ChunkDownload());
        chunk.Subcommands.Add(ChunkUpload());
        chunk.Subcommands.Add(ChunkMerge());
        chunk.Subcommands.Add(ChunkSplit());
    }

    private static Option<string> ChunksOption() => new("--chunks") { Description = "The chunk directory (skopeo's dir: format)", Required = true };

    private static Command ChunkDownload()
    {
        var cmd = new Command("download", """
            Download an image's chunks into a chunk directory: only those not already there with
            the right digest (a wrong one is replaced), each verified while it streams, a cut
            download resumed with Range. A re-run that has every chunk fetches only the manifest.

            Examples:
              treechunk oci chunk download --registry quay.io --repository example/os --tag 42 --chunks ./chunks
              treechunk oci chunk download docker://quay.io/example/os@sha256:... --chunks ./chunks
            """);
        var source = new Argument<string?>("SOURCE") { Description = "docker://HOST/REPO[:TAG|@DIGEST] (or --registry/--repository/--tag|--digest)", Arity = ArgumentArity.ZeroOrOne };
        var chunks = ChunksOption();
        var seed = new SeedReference();
        var options = new TransferOptions();
        cmd.Arguments.Add(source);
        cmd.Options.Add(chunks);
        seed.AddTo(cmd, digest: true);
        options.AddTo(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var src = RegistryReference(p.GetValue(source), seed.From(p), ReferenceRole.Source, "download");
            return Transfer(p, options, src, new ChunkDirectoryReference(p.GetValue(chunks)!));
        }));
        return cmd;
    }

    private static Command ChunkUpload()
    {
        var cmd = new Command("upload", """
            Upload a chunk directory to a registry: every chunk is verified against the manifest
            first (a bad one is named and nothing is sent), then blob by blob as a push does
            (HEAD skips, mounts, resumable chunked uploads with --upload-chunk-size), the
            manifest last. Running it again sends nothing but the manifest.

            Examples:
              treechunk oci chunk upload --registry quay.io --repository example/os --tag 42 --chunks ./chunks
              treechunk oci chunk upload docker://quay.io/example/os:42 --chunks ./chunks
            """);
        var dest = new Argument<string?>("DESTINATION") { Description = "docker://HOST/REPO[:TAG] (or --registry/--repository/--tag)", Arity = ArgumentArity.ZeroOrOne };
        var chunks = ChunksOption();
        var seed = new SeedReference();
        var options = new TransferOptions();
        cmd.Arguments.Add(dest);
        cmd.Options.Add(chunks);
        seed.AddTo(cmd, digest: false);
        options.AddTo(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var dst = RegistryReference(p.GetValue(dest), seed.From(p), ReferenceRole.Destination, "upload");
            var src = new ChunkDirectoryReference(p.GetValue(chunks)!);
            VerifyChunks(src);
            return Transfer(p, options, src, dst);
        }));
        return cmd;
    }

    private static Command ChunkMerge()
    {
        var cmd = new Command("merge", """
            Assemble an image from a chunk directory: every chunk is verified first, a missing or
            corrupt one is named and nothing is written; the manifest digest is kept.

            Example:
              treechunk oci chunk merge ./chunks oci:./image:latest
            """);
        var chunks = new Argument<string>("CHUNKS_DIR") { Description = "The chunk directory" };
        var image = new Argument<string>("IMAGE") { Description = "Where the image goes: oci:PATH[:TAG], oci-archive:FILE[:TAG], docker://HOST/REPO[:TAG]" };
        var options = new TransferOptions();
        cmd.Arguments.Add(chunks);
        cmd.Arguments.Add(image);
        options.AddTo(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var src = new ChunkDirectoryReference(p.GetValue(chunks)!);
            var dst = ImageReference.Parse(p.GetValue(image)!, ReferenceRole.Destination);
            VerifyChunks(src);
            return Transfer(p, options, src, dst);
        }));
        return cmd;
    }

    private static Command ChunkSplit()
    {
        var cmd = new Command("split", """
            Write an image as a chunk directory (the inverse of merge), to stage a build's output
            for upload or to carry it by other means; skopeo reads it as dir:CHUNKS_DIR.

            Example:
              treechunk oci chunk split oci:./image:latest ./chunks
            """);
        var image = new Argument<string>("IMAGE") { Description = ImageHelp };
        var chunks = new Argument<string>("CHUNKS_DIR") { Description = "The chunk directory (created, or updated: chunks there with the right digest are kept)" };
        var options = new TransferOptions();
        cmd.Arguments.Add(image);
        cmd.Arguments.Add(chunks);
        options.AddTo(cmd);
        cmd.SetAction(p => Run.Guarded(p, () =>
            Transfer(p, options, ImageReference.Parse(p.GetValue(image)!), new ChunkDirectoryReference(p.GetValue(chunks)!))));
        return cmd;
    }

    /// <summary>A registry reference given as text or by the seed's flags (exactly one of them).</summary>
    private static DockerReference RegistryReference(string? text, DockerReference? flags, ReferenceRole role, string verb)
    {
        var reference = (text, flags) switch
        {
            ({ } t, null) => ImageReference.Parse(t, role),
            (null, { } f) => f,
            (null, null) => throw new TreechunkException($"name the registry image to {verb}: docker://HOST/REPO[:TAG] or --registry/--repository"),
            _ => throw new TreechunkException("give docker://HOST/REPO[:TAG] or --registry/--repository, not both"),
        };
        if (role == ReferenceRole.Destination && reference.Digest != null)
            throw new TreechunkException("--digest names what an image is, not where it goes (give --tag)");
        return reference as DockerReference ?? throw new TreechunkException($"chunk {verb} works with a registry (docker://HOST/REPO[:TAG]), not {reference} (use oci chunk merge or split)");
    }

    private static void VerifyChunks(ChunkDirectoryReference chunks)
    {
        using var source = chunks.OpenSource();
        var top = source.Resolve(null, null);
        var blobs = ImageVerifier.VerifyOrThrow(source, top, c => Run.Log($"ok  {c.Kind} {c.Digest}"));
        Run.Log($"{source.Name}: {blobs} blobs verified");
    }

    /// <summary>copy, push and pull: resolve, pick the platform, copy, report.</summary>
    private static int Transfer(ParseResult p, TransferOptions options, ImageReference src, ImageReference dst)
    {
        var ctx = RegistryContext.Default;
        if (p.GetValue(options.UploadChunkSize) is { } chunk) ctx.UploadChunkSize = Sizes.Parse(chunk, "--upload-chunk-size");
        var parallel = p.GetValue(options.Parallel);
        if (parallel is < 1 or > 64) throw new TreechunkException($"--parallel must be between 1 and 64 (got {parallel})");
        using var from = src.OpenSource();
        var top = from.Resolve(src.Tag, src.Digest);
        if (p.GetValue(options.Platform) is { } wanted) top = from.SelectPlatform(top, Platforms.Parse(wanted), wanted);
        // A chunk directory has no tags.
        var tag = dst is ChunkDirectoryReference ? null : dst.Tag ?? src.Tag ?? top.Annotations?.GetValueOrDefault(Oci.Annotations.RefName) ?? (src.Digest != null ? null : "latest");
        bool json = p.GetValue(options.Json);
        using var to = Run.OpenDestination(dst, p.GetValue(options.Force));
        // From a registry into a layout that holds images already: zstd:chunked layers are
        // rebuilt from the frames the layout has and ranges of what it lacks.
        var intoLayout = src is DockerReference && dst is OciLayoutReference layout && File.Exists(Path.Join(layout.Path, OciLayout.IndexFile));
        var partial = intoLayout && !p.GetValue(options.NoPartial)
            ? ZstdChunkedPull.ForLayout(OciLayoutSource.Open(((OciLayoutReference)dst).Path), Run.Log)
            : null;
        // And layers with a delta from blobs the layout has are rebuilt from the delta first
        // (what the delta cannot make is fetched as above).
        var deltas = intoLayout && !p.GetValue(options.NoDeltas)
            ? DeltaPull.For(from, top, ((OciLayoutReference)dst).Path, Run.Log, Run.Warn)
            : null;
        // A layout's or archive's signatures of the image (tags sha256-HEX.sig, sha256-HEX) go
        // along, as their stored bytes, so the image arrives verifiable; a chunk directory holds
        // one image and nothing else.
        var attachments = dst is ChunkDirectoryReference ? [] : Treechunk.Signing.SignatureStore.LocalAttachments(from, top);
        // Deltas kept beside the image in a layout or archive go along too (a registry's stay
        // there: pulls use them in place).
        if (dst is not ChunkDirectoryReference && from is not RegistrySource && MediaTypes.IsManifest(top.MediaType) &&
            DeltaStore.Find(from, top.Digest, Run.Log) is { } localDeltas)
            attachments.Add((localDeltas.Descriptor, DeltaArtifact.Tag(top.Digest)));
        var result = TransferProgress.Run(json, progress =>
        {
            var r = ImageCopier.CopyContent(from, top, to, parallel, progress, Run.Log, partial, deltas);
            foreach (var (d, attachmentTag) in attachments)
            {
                Run.Log($"copy the attachment at tag {attachmentTag} ({d.Digest})");
                ImageCopier.CopyContent(from, d, to, parallel, null, Run.Log);
                to.Tag(d, attachmentTag);
            }
            to.Tag(top, tag);
            to.Commit();
            return r;
        });
        var stats = ctx.Stats;
        var partialLayers = partial?.Results.OrderBy(r => r.Digest, StringComparer.Ordinal).ToList() ?? [];
        JsonArray PartialJson() => new(partialLayers.Select(r => (JsonNode)new JsonObject
        {
            ["digest"] = r.Digest,
            ["size"] = r.Size,
            ["bytes_fetched"] = r.BytesFetched,
            ["bytes_local"] = r.BytesLocal,
            ["bytes_rebuilt"] = r.BytesRebuilt,
            ["requests"] = r.Requests,
        }).ToArray());
        var deltaLayers = deltas?.Results.OrderBy(r => r.Digest, StringComparer.Ordinal).ToList() ?? [];
        var fallbacks = deltas?.Fallbacks.OrderBy(r => r.Digest, StringComparer.Ordinal).ToList() ?? [];
        // Per layer and per method: how each blob that was not there arrived and what it cost.
        JsonArray TransfersJson() => new(result.Transfers.OrderBy(t => t.Digest, StringComparer.Ordinal).Select(t => (JsonNode)new JsonObject
        {
            ["digest"] = t.Digest,
            ["size"] = t.Size,
            ["method"] = t.Method,
            ["bytes_fetched"] = t.BytesFetched + fallbacks.Where(f => f.Digest == t.Digest).Sum(f => f.BytesFetched),
        }).ToArray());
        JsonObject ByMethod()
        {
            var node = new JsonObject();
            foreach (var g in result.Transfers.GroupBy(t => t.Method).OrderBy(g => g.Key, StringComparer.Ordinal)) node[g.Key] = g.Sum(t => t.BytesFetched);
            if (fallbacks.Count > 0) node["delta_failed"] = fallbacks.Sum(f => f.BytesFetched);
            return node;
        }
        JsonObject DeltaJson(JsonObject node)
        {
            node["transfers"] = TransfersJson();
            node["bytes_fetched_by_method"] = ByMethod();
            node["deltas_found"] = new JsonArray((deltas?.Origins ?? []).Select(o => (JsonNode)JsonValue.Create(o)!).ToArray());
            node["delta_layers"] = new JsonArray(deltaLayers.Select(r => (JsonNode)new JsonObject
            {
                ["digest"] = r.Digest,
                ["size"] = r.Size,
                ["delta"] = r.Delta,
                ["bytes_fetched"] = r.BytesFetched,
                ["seconds"] = r.Seconds,
            }).ToArray());
            node["delta_fallbacks"] = new JsonArray(fallbacks.Select(f => (JsonNode)new JsonObject
            {
                ["digest"] = f.Digest,
                ["reason"] = f.Reason,
                ["bytes_fetched"] = f.BytesFetched,
            }).ToArray());
            node["delta_bytes_fetched"] = deltaLayers.Sum(r => r.BytesFetched) + fallbacks.Sum(f => f.BytesFetched);
            return node;
        }
        if (p.GetValue(options.MetricsFile) is { } metricsFile)
            Treechunk.IO.AtomicFile.Write(metricsFile, System.Text.Encoding.UTF8.GetBytes(DeltaJson(new JsonObject
            {
                ["digest"] = top.Digest,
                ["blobs_copied"] = result.BlobsCopied,
                ["blobs_skipped"] = result.BlobsSkipped,
                ["bytes_copied"] = result.BytesCopied,
                ["bytes_sent"] = stats.BytesSent,
                ["bytes_received"] = stats.BytesReceived,
                ["partial_layers"] = PartialJson(),
                ["partial_bytes_fetched"] = partialLayers.Sum(r => r.BytesFetched),
            }).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n"));
        if (json)
            Run.PrintJson(DeltaJson(new JsonObject
            {
                ["source"] = src.ToString(),
                ["destination"] = dst.ToString(),
                ["tag"] = tag,
                ["digest"] = top.Digest,
                ["media_type"] = top.MediaType,
                ["manifests"] = result.Manifests,
                ["signature_tags"] = new JsonArray(attachments.Select(a => (JsonNode)a.Tag).ToArray()),
                ["blobs_copied"] = result.BlobsCopied,
                ["blobs_skipped"] = result.BlobsSkipped,
                ["bytes_copied"] = result.BytesCopied,
                ["blobs_mounted"] = stats.BlobsMounted,
                ["bytes_sent"] = stats.BytesSent,
                ["bytes_received"] = stats.BytesReceived,
                ["retried"] = stats.Retries,
                ["resumed"] = stats.Resumes,
                ["partial_layers"] = PartialJson(),
                ["partial_bytes_fetched"] = partialLayers.Sum(r => r.BytesFetched),
            }));
        else
            Console.WriteLine($"{dst.Transport}:{dst.Location}{(tag != null ? ":" + tag : "")} {top.Digest} ({result.BlobsCopied} blobs copied{(stats.BlobsMounted > 0 ? $", {stats.BlobsMounted} mounted" : "")}, {result.BlobsSkipped} already there, {Sizes.Format(result.BytesCopied)}{(partialLayers.Count > 0 ? $"; {partialLayers.Count} zstd:chunked layers rebuilt from {Sizes.Format(partialLayers.Sum(r => r.BytesFetched))} fetched" : "")}{(deltaLayers.Count > 0 ? $"; {deltaLayers.Count} layers rebuilt from {Sizes.Format(deltaLayers.Sum(r => r.BytesFetched))} of deltas" : "")})");
        return ExitCodes.Ok;
    }

    private static Command Tags()
    {
        var cmd = new Command("tags", "List a registry repository's tags (all pages)\n\nExamples:\n  treechunk oci tags docker://quay.io/example/myapp\n  treechunk oci tags --registry quay.io --repository example/myapp --json");
        var repo = new Argument<string?>("REPOSITORY") { Description = "docker://HOST/REPO (or --registry/--repository)", Arity = ArgumentArity.ZeroOrOne };
        var seed = new SeedReference();
        var json = GlobalOptions.Json();
        var pageSize = new Option<int>("--page-size") { Description = "Tags asked for per request (the registry's Link header leads to the next page)", DefaultValueFactory = _ => 1000 };
        cmd.Arguments.Add(repo);
        cmd.Options.Add(seed.Registry);
        cmd.Options.Add(seed.Repository);
        cmd.Options.Add(pageSize);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var reference = (p.GetValue(repo), seed.From(p)) switch
            {
                ({ } text, null) => ImageReference.Parse(text) as DockerReference ?? throw new TreechunkException($"{text}: tags are listed for a registry repository (docker://HOST/REPO)"),
                (null, { } flags) => flags,
                (null, null) => throw new TreechunkException("name the repository: docker://HOST/REPO or --registry/--repository"),
                _ => throw new TreechunkException("give docker://HOST/REPO or --registry/--repository, not both"),
            };
            if (p.GetValue(pageSize) is < 1 or > 10_000) throw new TreechunkException("--page-size must be between 1 and 10000");
            var tags = RegistryContext.Default.Client(reference.Name).Tags(p.GetValue(pageSize));
            if (p.GetValue(json)) Run.PrintJson(new JsonArray(tags.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()));
            else foreach (var t in tags) Console.WriteLine(t);
            return ExitCodes.Ok;
        }));
        return cmd;
    }
}
