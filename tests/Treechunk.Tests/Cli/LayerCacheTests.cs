using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

public class LayerCacheTests
{
    [Fact]
    public void A_rebuild_recompresses_only_layers_whose_content_changed()
    {
        using var tmp = new TempDir("lcache");
        SyntheticTree.Create(tmp["rootfs"]);
        string[] Args(string output, string metrics) =>
        [
            "compose", "build-chunked-oci", "--rootfs", tmp["rootfs"], "--output", $"oci:{output}", "--chunk-size", "64K",
            "--compression", "zstd", "--cache-dir", tmp["cache"], "--cache-layers", "--metrics-file", metrics, "--json",
        ];
        var first = JsonNode.Parse(TreechunkCli.Check(Args(tmp["a"], tmp["m1.json"])))!;
        var m1 = JsonNode.Parse(File.ReadAllText(tmp["m1.json"]))!;
        Assert.Equal(0, (int)m1["layers_reused"]!);

        File.WriteAllText(Path.Join(tmp["rootfs"], "etc/app.conf"), "key=changed\n");
        var second = JsonNode.Parse(TreechunkCli.Check(Args(tmp["b"], tmp["m2.json"])))!;
        var m2 = JsonNode.Parse(File.ReadAllText(tmp["m2.json"]))!;
        int layers = second["layers"]!.AsArray().Count;
        Assert.Equal(layers - 1, (int)m2["layers_reused"]!);
        Assert.Equal(1, (int)m2["layers_compressed"]!);

        // Cached layers are the very bytes a fresh build writes.
        var fresh = JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", tmp["rootfs"], "--output", $"oci:{tmp["c"]}",
            "--chunk-size", "64K", "--compression", "zstd", "--json"))!;
        Assert.Equal((string?)fresh["manifest_digest"], (string?)second["manifest_digest"]);
        TreechunkCli.Check("oci", "verify-layers", tmp["b"]);
        Assert.NotEqual((string?)first["manifest_digest"], (string?)second["manifest_digest"]);
    }

    [Fact]
    public void Cache_layers_without_a_cache_dir_is_refused()
    {
        using var tmp = new TempDir("lcache-bad");
        Directory.CreateDirectory(tmp["rootfs"]);
        Assert.Contains("--cache-dir", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", tmp["rootfs"], "--output", $"oci:{tmp["o"]}", "--cache-layers"));
    }

    [Fact]
    public void Zstd_workers_give_the_same_bytes_for_any_count()
    {
        using var tmp = new TempDir("zworkers");
        SyntheticTree.Create(tmp["rootfs"]);
        string Build(string n) => (string)JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", tmp["rootfs"],
            "--output", $"oci:{tmp["o" + n]}", "--compression", "zstd", "--parallel-chunks", n, "--json"))!["manifest_digest"]!;
        Assert.Equal(Build("1"), Build("3"));
        TreechunkCli.Check("oci", "verify-layers", tmp["o3"]);
    }
}
