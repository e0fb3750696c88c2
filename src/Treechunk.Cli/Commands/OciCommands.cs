using System.CommandLine;
using System.Text.Json.Nodes;
using Treechunk.Build;
using Treechunk.Chunking;
using Treechunk.Encapsulation;
using Treechunk.Layers;
using Treechunk.Oci;
using Treechunk.Ostree;
using Treechunk.Transports;

namespace Treechunk.Cli.Commands;

public static class OciCommands
{
    private const string ImageHelp = "Image: docker://HOST/REPO[:TAG|@DIGEST], oci:PATH[:TAG|@DIGEST], oci-archive:FILE[:TAG|@DIGEST], dir:CHUNK_DIR, or a bare path (layout dir, chunk dir or archive file; its latest or only tag)";

    public static Command Create()
    {
        var oci = new Command("oci", "Look inside, verify, copy, push, pull and extract OCI images");
        oci.Subcommands.Add(Inspect());
        TransferCommands.AddTo(oci);
        RuntimeCommands.AddTo(oci);
        oci.Subcommands.Add(RegistryCommands.Create());
        oci.Subcommands.Add(ManifestCommands.Create());
        oci.Subcommands.Add(Layers());
        var chunk = new Command("chunk", "The image's chunks (layers) one by one");
        chunk.Subcommands.Add(ChunkList());
        chunk.Subcommands.Add(VerifyCommand("verify", "Verify every chunk: digest, size and diff_id (same as oci verify-layers)"));
        TransferCommands.AddChunkCommands(chunk);
        oci.Subcommands.Add(chunk);
        oci.Subcommands.Add(VerifyCommand("verify-layers", "Verify every blob's digest and size and every layer's diff_id against the config"));
        oci.Subcommands.Add(VerifyContent());
        oci.Subcommands.Add(Extract());
        oci.Subcommands.Add(ImportOstree());
        oci.Subcommands.Add(DiffCommand.Create(ImageHelp));
        oci.Subcommands.Add(DeltaCommands.Create(ImageHelp));
        oci.Subcommands.Add(ScanCommand.Create(ImageHelp));
        SigningCommands.AddTo(oci);
        return oci;
    }

    private static Argument<string> ImageArgument() => new("IMAGE") { Description = ImageHelp };

    /// <summary>A command that opens one image (with the usual error contract) and may print JSON.</summary>
    private static Command ImageCommand(string name, string description, Func<ParseResult, Image, bool, int> body, params Option[] extra)
    {
        var cmd = new Command(name, description);
        var image = ImageArgument();
        var json = GlobalOptions.Json();
        cmd.Arguments.Add(image);
        cmd.Options.Add(GlobalOptions.Platform());
        cmd.Options.Add(json);
        foreach (var o in extra) cmd.Options.Add(o);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            using var img = Run.OpenImage(p, p.GetValue(image)!);
            return body(p, img, p.GetValue(json));
        }));
        return cmd;
    }

    private static Command Inspect()
    {
        var cmd = new Command("inspect", """
            Show an image's manifest, config, labels, history and totals.

            With --raw, print the stored bytes of what the reference names (an index stays an
            index), or with --config the stored config; nothing is re-serialised.

            Examples:
              treechunk oci inspect oci:./image:latest --json
              treechunk oci inspect --raw oci-archive:./os.tar | sha256sum
            """);
        var image = ImageArgument();
        var json = GlobalOptions.Json();
        var raw = new Option<bool>("--raw") { Description = "Print the stored manifest (or index) bytes as they are" };
        var configOnly = new Option<bool>("--config") { Description = "Print the config instead of the manifest (stored bytes with --raw)" };
        cmd.Arguments.Add(image);
        cmd.Options.Add(GlobalOptions.Platform());
        foreach (var o in new Option[] { json, raw, configOnly }) cmd.Options.Add(o);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            if (p.GetValue(raw) && !p.GetValue(configOnly))
            {
                var reference = ImageReference.Parse(p.GetValue(image)!);
                using var source = reference.OpenSource();
                var top = source.Resolve(reference.Tag, reference.Digest);
                Run.Log($"{source.Name}: {top.MediaType} {top.Digest}");
                using var stdout = Console.OpenStandardOutput();
                stdout.Write(source.ReadManifest(top));
                return ExitCodes.Ok;
            }
            using var img = Run.OpenImage(p, p.GetValue(image)!);
            if (p.GetValue(configOnly))
            {
                if (p.GetValue(raw))
                {
                    using var stdout = Console.OpenStandardOutput();
                    stdout.Write(img.RawConfig);
                }
                else Run.PrintJson(JsonNode.Parse(img.RawConfig)!);
                return ExitCodes.Ok;
            }
            long compressed = img.Manifest.Layers.Sum(l => l.Size);
            if (p.GetValue(json))
            {
                Run.PrintJson(new JsonObject
                {
                    ["reference"] = p.GetValue(image),
                    ["manifest_digest"] = img.Descriptor.Digest,
                    ["media_type"] = img.Descriptor.MediaType,
                    ["index_digest"] = img.IndexDescriptor?.Digest,
                    ["manifest"] = JsonNode.Parse(img.RawManifest),
                    ["config_digest"] = img.Manifest.Config.Digest,
                    ["config"] = JsonNode.Parse(img.RawConfig),
                    ["layers"] = img.Manifest.Layers.Count,
                    ["compressed_size"] = compressed,
                });
                return ExitCodes.Ok;
            }
            var c = img.Config;
            Console.WriteLine($"Image:         {img.Name}");
            Console.WriteLine($"Digest:        {img.Descriptor.Digest}");
            if (img.IndexDescriptor != null) Console.WriteLine($"Index:         {img.IndexDescriptor.Digest}");
            Console.WriteLine($"Media type:    {img.Descriptor.MediaType}");
            Console.WriteLine($"Platform:      {c.Os}/{c.Architecture}{(c.Variant != null ? "/" + c.Variant : "")}");
            Console.WriteLine($"Created:       {c.Created ?? "-"}");
            Console.WriteLine($"Config:        {img.Manifest.Config.Digest}");
            Console.WriteLine($"Layers:        {img.Manifest.Layers.Count} ({Sizes.Format(compressed)} compressed)");
            if (c.Config?.Labels is { Count: > 0 } labels)
            {
                Console.WriteLine("Labels:");
                foreach (var (k, v) in labels) Console.WriteLine($"  {k}={v}");
            }
            if (img.Manifest.Annotations is { Count: > 0 } ann)
            {
                Console.WriteLine("Annotations:");
                foreach (var (k, v) in ann) Console.WriteLine($"  {k}={v}");
            }
            if (c.Config?.Cmd is { } cmdLine) Console.WriteLine($"Cmd:           {string.Join(' ', cmdLine)}");
            if (c.History is { Count: > 0 } history)
            {
                Console.WriteLine("History:");
                foreach (var h in history)
                    Console.WriteLine($"  {h.Created ?? "-"}  {h.CreatedBy ?? ""}  {Shorten(h.Comment ?? "", 80)}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Layers()
    {
        return ImageCommand("layers", "List each layer: digest, diff_id, sizes, media type, components\n\nExample:\n  treechunk oci layers ./image", (p, img, json) =>
        {
            var rows = img.Manifest.Layers.Select((l, i) => new
            {
                Index = i,
                Layer = l,
                DiffId = img.Config.RootFs.DiffIds[i],
                Components = LayerAnnotations.Components(l),
                Uncompressed = LayerAnnotations.Stats(l)?.Sum(s => s.Bytes),
            }).ToList();
            if (json)
            {
                Run.PrintJson(new JsonArray(rows.Select(r => (JsonNode)new JsonObject
                {
                    ["index"] = r.Index,
                    ["digest"] = r.Layer.Digest,
                    ["diff_id"] = r.DiffId,
                    ["size"] = r.Layer.Size,
                    ["content_size"] = r.Uncompressed,
                    ["media_type"] = r.Layer.MediaType,
                    ["components"] = new JsonArray(r.Components.Select(c => (JsonNode)JsonValue.Create(c)!).ToArray()),
                }).ToArray()));
                return ExitCodes.Ok;
            }
            Console.WriteLine($"{"#",3}  {"DIGEST",-19}  {"DIFF_ID",-19}  {"SIZE",10}  {"CONTENT",10}  {"TYPE",-10}  COMPONENTS");
            foreach (var r in rows)
                Console.WriteLine($"{r.Index,3}  {Short(r.Layer.Digest),-19}  {Short(r.DiffId),-19}  {Sizes.Format(r.Layer.Size),10}  " +
                                  $"{(r.Uncompressed is { } u ? Sizes.Format(u) : "-"),10}  {ShortType(r.Layer.MediaType),-10}  {Shorten(string.Join(",", r.Components), 60)}");
            return ExitCodes.Ok;
        });
    }

    private static Command ChunkList()
    {
        return ImageCommand("list", "List the image's chunks: each layer's components with their file counts and sizes\n\nExample:\n  treechunk oci chunk list ./image --json", (p, img, json) =>
        {
            var chunks = img.Manifest.Layers.Select((l, i) =>
            {
                var stats = LayerAnnotations.Stats(l)
                            ?? LayerAnnotations.Components(l).Select(n => (Name: n, Files: -1, Bytes: -1L)).ToList();
                return (Index: i, Layer: l, Stats: stats);
            }).ToList();
            if (json)
            {
                Run.PrintJson(new JsonArray(chunks.Select(c => (JsonNode)new JsonObject
                {
                    ["index"] = c.Index,
                    ["digest"] = c.Layer.Digest,
                    ["size"] = c.Layer.Size,
                    ["components"] = new JsonArray(c.Stats.Select(s => (JsonNode)new JsonObject
                    {
                        ["name"] = s.Name,
                        ["files"] = s.Files >= 0 ? s.Files : null,
                        ["size"] = s.Bytes >= 0 ? s.Bytes : null,
                    }).ToArray()),
                }).ToArray()));
                return ExitCodes.Ok;
            }
            foreach (var c in chunks)
            {
                Console.WriteLine($"chunk {c.Index}  {c.Layer.Digest}  {Sizes.Format(c.Layer.Size)} compressed, {c.Stats.Count} components");
                foreach (var s in c.Stats)
                    Console.WriteLine(s.Files >= 0 ? $"  {s.Name}  {s.Files} files  {Sizes.Format(s.Bytes)}" : $"  {s.Name}");
            }
            return ExitCodes.Ok;
        });
    }

    private static Command VerifyCommand(string name, string description)
    {
        return ImageCommand(name, description + $"\n\nExits 1 naming the first bad blob.\n\nExample:\n  treechunk oci {(name == "verify" ? "chunk verify" : name)} ./image", (p, img, json) =>
        {
            var checks = ImageVerifier.Verify(img, c => Run.Log($"{(c.Ok ? "ok " : "BAD")} {c.Kind} {c.Digest}"));
            var bad = checks.FirstOrDefault(c => !c.Ok);
            if (json)
            {
                Run.PrintJson(new JsonObject
                {
                    ["ok"] = bad == null,
                    ["manifest_digest"] = img.Descriptor.Digest,
                    ["blobs"] = new JsonArray(checks.Select(c => (JsonNode)new JsonObject
                    {
                        ["kind"] = c.Kind, ["index"] = c.LayerIndex, ["digest"] = c.Digest, ["size"] = c.Size,
                        ["diff_id"] = c.DiffId, ["ok"] = c.Ok, ["problem"] = c.Problem,
                    }).ToArray()),
                });
            }
            if (bad != null)
                throw new TreechunkException($"layer {bad.LayerIndex}: {bad.Problem}", ExitCodes.VerificationFailed);
            if (!json) Console.WriteLine($"ok: {checks.Count} blobs verified ({img.Manifest.Layers.Count} layers) for {img.Descriptor.Digest}");
            return ExitCodes.Ok;
        });
    }

    private static Command VerifyContent()
    {
        var cmd = new Command("verify-content", "Check that the image's manifest digest is the expected one\n\nExample:\n  treechunk oci verify-content --expected-digest sha256:... ./image");
        var image = ImageArgument();
        var expected = new Option<string>("--expected-digest") { Description = "The manifest digest the image must have", Required = true };
        cmd.Arguments.Add(image);
        cmd.Options.Add(GlobalOptions.Platform());
        cmd.Options.Add(expected);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var want = p.GetValue(expected)!;
            Digest.Hex(want);
            using var img = Run.OpenImage(p, p.GetValue(image)!);
            if (img.Descriptor.Digest != want)
                throw new TreechunkException($"manifest digest is {img.Descriptor.Digest}, expected {want}", ExitCodes.VerificationFailed);
            Console.WriteLine($"ok: manifest digest {want}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command Extract()
    {
        var cmd = new Command("extract", "Unpack an image's layers in order (whiteouts applied) into a new directory\n\nExample:\n  treechunk oci extract ./image ./rootfs");
        var image = ImageArgument();
        var dir = new Argument<string>("DIR") { Description = "Target directory (absent or empty)" };
        cmd.Arguments.Add(image);
        cmd.Options.Add(GlobalOptions.Platform());
        cmd.Arguments.Add(dir);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            using var img = Run.OpenImage(p, p.GetValue(image)!);
            ImageExtractor.Extract(img, p.GetValue(dir)!, m => Run.Warn(m));
            Run.Log($"extracted {img.Manifest.Layers.Count} layers into {p.GetValue(dir)}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command ImportOstree()
    {
        var cmd = new Command("import-ostree", """
            Import an image into an OSTree repository.

            An image made by container-encapsulate becomes its original commit again (same
            checksum); any other image becomes a new commit of its flattened tree. The repo is
            created (archive mode) when missing.

            Example:
              treechunk oci import-ostree oci:./image:latest --repo ./repo --ref os/stable
            """);
        var image = ImageArgument();
        var repo = new Option<string>("--repo") { Description = "OSTree repository (created as archive if missing)", Required = true };
        var refName = new Option<string?>("--ref") { Description = "Ref to point at the imported commit" };
        var json = GlobalOptions.Json();
        cmd.Arguments.Add(image);
        cmd.Options.Add(GlobalOptions.Platform());
        cmd.Options.Add(repo);
        cmd.Options.Add(refName);
        cmd.Options.Add(json);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            using var img = Run.OpenImage(p, p.GetValue(image)!);
            var r = OstreeRepo.OpenOrInit(p.GetValue(repo)!, RepoMode.Archive);
            Run.Log($"importing into {r.Path} ({OstreeRepo.ModeName(r.Mode)})");
            var result = OstreeImageImport.Import(img, r, p.GetValue(refName), ComposeCommands.SourceDateEpoch() ?? 0, m => Run.Warn(m));
            if (p.GetValue(json))
                Run.PrintJson(new System.Text.Json.Nodes.JsonObject { ["commit"] = result.Commit, ["exact"] = result.Exact, ["ref"] = result.Ref });
            else
                Console.WriteLine(result.Exact
                    ? $"{result.Commit} (the image's original commit){(result.Ref != null ? " -> " + result.Ref : "")}"
                    : $"{result.Commit} (new commit of the flattened image){(result.Ref != null ? " -> " + result.Ref : "")}");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static string Short(string digest) => digest.Length > 19 ? digest[..19] : digest;

    private static string ShortType(string mediaType) => mediaType switch
    {
        MediaTypes.LayerGzip or MediaTypes.DockerLayerGzip => "tar+gzip",
        MediaTypes.LayerZstd => "tar+zstd",
        MediaTypes.Layer => "tar",
        _ => mediaType,
    };

    private static string Shorten(string s, int max) => s.Length <= max ? s : s[..(max - 1)] + "…";
}
