using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Treechunk.Tests.Support;

/// <summary>Peer checks that assert on what the peer reports, not only that it ran.</summary>
public static class Peers
{
    /// <summary>
    /// skopeo inspect of <paramref name="reference"/> must agree with treechunk's own inspect:
    /// the manifest digest, the layer digests in order, and the labels. Returns skopeo's answer.
    /// </summary>
    public static JsonNode SkopeoAgrees(string reference)
    {
        var ours = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", reference, "--json"))!;
        var theirs = JsonNode.Parse(Proc.Check(Tools.Require("skopeo"), "inspect", reference))!;
        Assert.Equal((string)ours["manifest_digest"]!, (string)theirs["Digest"]!);
        Assert.Equal(ours["manifest"]!["layers"]!.AsArray().Select(l => (string)l!["digest"]!), theirs["Layers"]!.AsArray().Select(l => (string)l!));
        static Dictionary<string, string> Labels(JsonNode? n) =>
            n is JsonObject o ? o.ToDictionary(kv => kv.Key, kv => (string)kv.Value!) : [];
        Assert.Equal(Labels(ours["config"]!["config"]?["Labels"]), Labels(theirs["Labels"]));
        Assert.Equal((string?)ours["config"]!["architecture"], (string?)theirs["Architecture"]);
        return theirs;
    }

    /// <summary>
    /// skopeo decompresses every layer (gzip or zstd, with its own decoders) into a dir: copy;
    /// the sha256 of each decompressed layer must be the config's diff_id, in order.
    /// </summary>
    public static void SkopeoDecompressesToTheDiffIds(string reference, string scratchDir)
    {
        var skopeo = Tools.Require("skopeo");
        Proc.Check(skopeo, "copy", "--dest-decompress", reference, $"dir:{scratchDir}");
        var config = JsonNode.Parse(Proc.Check(skopeo, "inspect", "--config", reference))!;
        var diffIds = config["rootfs"]!["diff_ids"]!.AsArray().Select(d => (string)d!).ToList();
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Join(scratchDir, "manifest.json")))!;
        var layers = manifest["layers"]!.AsArray().Select(l => (string)l!["digest"]!).ToList();
        Assert.Equal(diffIds.Count, layers.Count);
        var hashes = layers.Select(d =>
        {
            using var f = File.OpenRead(Path.Join(scratchDir, d["sha256:".Length..]));
            return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(f));
        });
        Assert.Equal(diffIds, hashes);
    }
}
