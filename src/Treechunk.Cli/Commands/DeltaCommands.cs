using System.CommandLine;
using System.Text.Json.Nodes;
using Treechunk.Chunking;
using Treechunk.Delta;
using Treechunk.Oci;
using Treechunk.Transports;

namespace Treechunk.Cli.Commands;

/// <summary>oci delta create: the deltas an update from OLD to NEW needs, stored beside NEW.</summary>
public static class DeltaCommands
{
    public static Command Create(string imageHelp)
    {
        var delta = new Command("delta", "Deltas between images: what a client holding OLD downloads to rebuild NEW's new layers");
        var cmd = new Command("create", """
            Make the deltas from OLD to NEW: for each layer of NEW that OLD lacks, a zstd
            patch-from delta of its tar against the tars of OLD's layers with the same components,
            kept only when compressing the tar again (as the layer's org.treechunk.compression
            annotation says) gives the layer's blob and the delta is smaller. They are stored as
            an OCI artifact whose subject is NEW's manifest, beside NEW: at tag sha256-HEX.delta
            in a layout or archive, or in NEW's registry (--push) as a referrer, at that tag where
            the registry has no referrers API. oci pull into a layout holding OLD uses them.

            Examples:
              treechunk oci delta create oci:./image:v1 oci:./image:v2
              treechunk oci delta create docker://registry.example/os:v1 docker://registry.example/os:v2 --push
              treechunk oci delta create oci:./image:v1 docker://registry.example/os:v2 --output oci:./deltas
            """);
        var oldImage = new Argument<string>("OLD") { Description = "The image clients have: " + imageHelp };
        var newImage = new Argument<string>("NEW") { Description = "The image they update to" };
        var push = new Option<bool>("--push") { Description = "NEW is in a registry: push the deltas there (required, so a registry is never written by surprise)" };
        var output = new Option<string?>("--output") { Description = "Store the artifact here instead of beside NEW (oci:PATH, oci-archive:FILE or docker://...)" };
        var level = new Option<int>("--level") { Description = "zstd level of the deltas (1-22, default 19: made once, fetched by every client)", DefaultValueFactory = _ => ZstdPatch.DefaultLevel };
        var json = GlobalOptions.Json();
        cmd.Arguments.Add(oldImage);
        cmd.Arguments.Add(newImage);
        foreach (var o in new Option[] { push, output, level, json }) cmd.Options.Add(o);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            var next = ImageReference.Parse(p.GetValue(newImage)!);
            ImageReference.Parse(p.GetValue(oldImage)!);
            var where = p.GetValue(output) is { } o ? ImageReference.Parse(o, ReferenceRole.Destination) : next with { Tag = null, Digest = null };
            if (where is DockerReference && p.GetValue(output) == null && !p.GetValue(push))
                throw new TreechunkException($"{next} is in a registry: give --push to store its deltas there, or --output oci:DIR");
            if (where is ChunkDirectoryReference) throw new TreechunkException($"{where}: a chunk directory holds one image and no deltas");
            var report = CreateAndStore(p.GetValue(oldImage)!, next, where, p.GetValue(level));
            if (p.GetValue(json)) Run.PrintJson(report);
            else
                Console.WriteLine($"{report["artifact"]} at {report["stored_at"]}: {report["deltas"]!.AsArray().Count} deltas, {Sizes.Format((long)report["delta_bytes"]!)} " +
                                  $"for {Sizes.Format((long)report["new_layer_bytes"]!)} of new layers ({report["skipped"]!.AsArray().Count} layers without a delta)");
            return ExitCodes.Ok;
        }));
        delta.Subcommands.Add(cmd);
        return delta;
    }

    /// <summary>Makes the deltas from <paramref name="oldText"/> to <paramref name="next"/>, stores them at <paramref name="where"/>, and says what was done (the --json object).</summary>
    public static JsonObject CreateAndStore(string oldText, ImageReference next, ImageReference where, int level)
    {
        using var old = Run.OpenImage(oldText);
        using var image = Run.OpenImage(next.ToString());
        Run.Log($"making deltas from {old.Descriptor.Digest} to {image.Descriptor.Digest} at level {level}");
        using var set = DeltaCreator.Create(old, image, level, log: Run.Log,
            scratchNear: where is OciLayoutReference l && Directory.Exists(l.Path) ? l.Path : null);
        var storedAt = DeltaStore.Write(where, set.Descriptor, set.Raw, set.Blobs);
        Run.Log($"deltas: artifact {set.Descriptor.Digest} stored at {where} ({storedAt})");
        return new JsonObject
        {
            ["old"] = old.Descriptor.Digest,
            ["new"] = image.Descriptor.Digest,
            ["artifact"] = set.Descriptor.Digest,
            ["destination"] = where.ToString(),
            ["stored_at"] = storedAt,
            ["deltas"] = new JsonArray(set.Entries.Select(e => (JsonNode)new JsonObject
            {
                ["layer"] = e.ToDigest,
                ["layer_size"] = image.Manifest.Layers.First(l => l.Digest == e.ToDigest).Size,
                ["delta"] = e.Blob.Digest,
                ["delta_size"] = e.Blob.Size,
                ["from"] = new JsonArray(e.From.Select(f => (JsonNode)JsonValue.Create(f.Digest)!).ToArray()),
            }).ToArray()),
            ["skipped"] = new JsonArray(set.Skipped.Select(s => (JsonNode)new JsonObject { ["layer"] = s.Digest, ["size"] = s.Size, ["reason"] = s.Reason }).ToArray()),
            ["new_layer_bytes"] = set.NewLayerBytes,
            ["delta_bytes"] = set.DeltaBytes,
            ["download_bytes"] = set.DownloadBytes,
            ["seconds"] = Math.Round(set.Seconds, 3),
        };
    }
}
