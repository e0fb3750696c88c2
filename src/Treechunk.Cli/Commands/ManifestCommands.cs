using System.CommandLine;
using System.Text.Json.Nodes;
using Treechunk.Chunking;
using Treechunk.Oci;
using Treechunk.Registry;
using Treechunk.Transports;

namespace Treechunk.Cli.Commands;

/// <summary>oci manifest create and inspect: multi-architecture indexes.</summary>
public static class ManifestCommands
{
    public static Command Create()
    {
        var manifest = new Command("manifest", "Multi-architecture image indexes: create one over per-architecture images, or show one");
        manifest.Subcommands.Add(CreateIndex());
        manifest.Subcommands.Add(Inspect());
        return manifest;
    }

    private static Command CreateIndex()
    {
        var cmd = new Command("create", """
            Create an OCI image index over one image per platform, each entry's platform read from
            its image's config, and write it under a tag. Every image is copied where the index
            goes first (blobs already there are skipped), so the index is complete.

            With --architectures the images are the registry's per-architecture tags TAG-ARCH
            (TAG-amd64, TAG-arm64, ...); --manifest (or positional references) names them
            explicitly, from anywhere; --output writes the index into a local layout instead.

            Examples:
              treechunk oci manifest create --registry quay.io --repository example/os --tag 42 --architectures amd64,arm64,ppc64le
              treechunk oci manifest create --registry quay.io --repository example/os --tag 42 \
                  --manifest docker://quay.io/example/os:42-amd64 --manifest oci:./arm64-image:42
              treechunk oci manifest create --output oci:./multi:42 oci:./amd64:42 oci:./arm64:42
            """);
        var images = new Argument<string[]>("IMAGE") { Description = "Images of the index (any reference), one per platform", Arity = ArgumentArity.ZeroOrMore };
        var manifests = new Option<string[]>("--manifest") { Description = "An image of the index (repeatable; any reference)", AllowMultipleArgumentsPerToken = false };
        var architectures = new Option<string?>("--architectures") { Description = "Comma-separated architectures whose images are the registry's tags TAG-ARCH" };
        var output = new Option<string?>("--output") { Description = "Write the index here instead of to the registry: oci:PATH[:TAG], oci-archive:FILE[:TAG]" };
        var seed = new TransferCommands.SeedReference();
        var parallel = new Option<int>("--parallel") { Description = "Blobs transferred at once (default 6)", DefaultValueFactory = _ => 6 };
        var json = GlobalOptions.Json();
        cmd.Arguments.Add(images);
        cmd.Options.Add(manifests);
        cmd.Options.Add(architectures);
        cmd.Options.Add(output);
        seed.AddTo(cmd, digest: false);
        cmd.Options.Add(parallel);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var flags = seed.From(p);
            ImageReference destination = (p.GetValue(output), flags) switch
            {
                ({ } text, null) => ImageReference.Parse(text, ReferenceRole.Destination),
                (null, { } f) => f,
                (null, null) => throw new TreechunkException("name where the index goes: --registry/--repository/--tag, or --output"),
                _ => throw new TreechunkException("give --registry/--repository/--tag or --output, not both"),
            };
            if (destination is ChunkDirectoryReference) throw new TreechunkException("a chunk directory holds one image: write the index to a registry or an OCI layout");
            var tag = destination.Tag ?? "latest";
            var refs = new List<string>(p.GetValue(images) ?? []);
            refs.AddRange(p.GetValue(manifests) ?? []);
            if (p.GetValue(architectures) is { } list)
            {
                if (destination is not DockerReference docker)
                    throw new TreechunkException("--architectures names the registry's TAG-ARCH tags: give --registry/--repository/--tag (or --manifest for other images)");
                foreach (var a in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                    refs.Add($"docker://{docker.Name}:{tag}-{Architectures.Find(a, "--architectures").Oci}");
            }
            if (refs.Count == 0) throw new TreechunkException("name the images of the index: --architectures, --manifest REF or IMAGE arguments");
            var n = p.GetValue(parallel);
            if (n is < 1 or > 64) throw new TreechunkException($"--parallel must be between 1 and 64 (got {n})");

            var sources = new List<IImageSource>();
            try
            {
                var entries = new List<IndexEntrySource>();
                foreach (var text in refs)
                {
                    var reference = ImageReference.Parse(text);
                    Run.Log($"opening {reference}");
                    var source = reference.OpenSource();
                    sources.Add(source);
                    entries.Add(new IndexEntrySource(source, source.Resolve(reference.Tag, reference.Digest), reference.ToString()));
                }
                using var to = Run.OpenDestination(destination, force: false);
                var result = TransferProgress.Run(p.GetValue(json), progress => IndexBuilder.Create(entries, to, tag, n, progress, Run.Log));
                if (p.GetValue(json))
                    Run.PrintJson(new JsonObject
                    {
                        ["destination"] = destination.ToString(),
                        ["tag"] = tag,
                        ["digest"] = result.Index.Digest,
                        ["manifests"] = new JsonArray(result.Entries.Select(e => (JsonNode)new JsonObject
                        {
                            ["digest"] = e.Digest, ["size"] = e.Size, ["media_type"] = e.MediaType, ["platform"] = PlatformText(e.Platform!),
                        }).ToArray()),
                        ["blobs_copied"] = result.BlobsCopied,
                        ["blobs_skipped"] = result.BlobsSkipped,
                    });
                else
                    Console.WriteLine($"{destination.Transport}:{destination.Location}:{tag} {result.Index.Digest} ({string.Join(", ", result.Entries.Select(e => PlatformText(e.Platform!)))})");
                return ExitCodes.Ok;
            }
            finally
            {
                foreach (var s in sources) s.Dispose();
            }
        }));
        return cmd;
    }

    private static Command Inspect()
    {
        var cmd = new Command("inspect", "Show an index's platforms and their manifests (or say that a reference is a single image)\n\nExample:\n  treechunk oci manifest inspect docker://quay.io/example/os:42");
        var image = new Argument<string>("IMAGE") { Description = "docker://HOST/REPO[:TAG|@DIGEST], oci:PATH[:TAG], ..." };
        var json = GlobalOptions.Json();
        cmd.Arguments.Add(image);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var reference = ImageReference.Parse(p.GetValue(image)!);
            using var source = reference.OpenSource();
            var top = source.Resolve(reference.Tag, reference.Digest);
            List<Descriptor> entries;
            if (MediaTypes.IsIndex(top.MediaType))
                entries = OciJson.Deserialize<ImageIndex>(source.ReadManifest(top), $"index {top.Digest}").Manifests;
            else
            {
                using var single = Image.Open(source, top);
                entries = [new Descriptor { MediaType = top.MediaType, Digest = top.Digest, Size = top.Size,
                    Platform = new Platform { Os = single.Config.Os, Architecture = single.Config.Architecture, Variant = single.Config.Variant } }];
            }
            if (p.GetValue(json))
                Run.PrintJson(new JsonObject
                {
                    ["digest"] = top.Digest,
                    ["media_type"] = top.MediaType,
                    ["index"] = MediaTypes.IsIndex(top.MediaType),
                    ["manifests"] = new JsonArray(entries.Select(e => (JsonNode)new JsonObject
                    {
                        ["digest"] = e.Digest, ["size"] = e.Size, ["media_type"] = e.MediaType,
                        ["platform"] = e.Platform is { } pl ? PlatformText(pl) : null,
                    }).ToArray()),
                });
            else
            {
                Console.WriteLine($"{reference} {top.Digest} ({(MediaTypes.IsIndex(top.MediaType) ? $"index of {entries.Count}" : "a single image")})");
                foreach (var e in entries)
                    Console.WriteLine($"  {(e.Platform is { } pl ? PlatformText(pl) : "(no platform)"),-22} {e.Digest}  {Sizes.Format(e.Size)}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static string PlatformText(Platform p) => $"{p.Os}/{p.Architecture}{(p.Variant != null ? "/" + p.Variant : "")}";
}
