using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Runtimes;

/// <summary>What treechunk's own inspect says of one built image: what the engines must report back.</summary>
public sealed record BuiltImage(string Layout, string Tag, string ManifestDigest, string ConfigDigest,
    IReadOnlyList<string> LayerDigests, IReadOnlyList<string> DiffIds, IReadOnlyDictionary<string, string> Labels)
{
    public string Ref => $"oci:{Layout}:{Tag}";
    /// <summary>The config digest's hex: the image id engines show.</summary>
    public string ImageId => ConfigDigest["sha256:".Length..];

    public static BuiltImage Inspect(string layout, string tag)
    {
        var json = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci:{layout}:{tag}", "--json"))!;
        return new BuiltImage(layout, tag, (string)json["manifest_digest"]!, (string)json["config_digest"]!,
            [.. json["manifest"]!["layers"]!.AsArray().Select(l => (string)l!["digest"]!)],
            [.. json["config"]!["rootfs"]!["diff_ids"]!.AsArray().Select(d => (string)d!)],
            json["config"]!["config"]!["Labels"]!.AsObject().ToDictionary(kv => kv.Key, kv => (string)kv.Value!));
    }
}

/// <summary>
/// The <see cref="RunnableTree"/> built twice: gzip layers (an engine takes them as they are)
/// and zstd layers (a docker-archive cannot hold them: recompressed on the way). Layouts are
/// named <c>os</c> and <c>os-zstd</c>, so a load without --tag names them localhost/os:v1 and
/// localhost/os-zstd:v1.
/// </summary>
public sealed class RuntimeImages : IDisposable
{
    public static readonly Dictionary<string, string> ExpectedLabels = new()
    {
        ["org.opencontainers.image.title"] = "treechunk runtime test",
        ["org.example.chunked"] = "yes",
    };

    public TempDir Dir { get; } = new("runtime-");
    public string Tree => Dir["tree"];
    public BuiltImage Gzip { get; }
    public BuiltImage Zstd { get; }

    public RuntimeImages()
    {
        RunnableTree.Create(Tree);
        Gzip = Build("os", "gzip");
        Zstd = Build("os-zstd", "zstd");
    }

    private BuiltImage Build(string name, string compression)
    {
        var labels = ExpectedLabels.SelectMany(kv => new[] { "--label", $"{kv.Key}={kv.Value}" });
        TreechunkCli.Check(["compose", "build-chunked-oci", "--rootfs", Tree, "--output", $"oci:{Dir[name]}:v1", "--compression", compression, .. labels]);
        var image = BuiltImage.Inspect(Dir[name], "v1");
        Assert.Equal(ExpectedLabels, image.Labels);
        Assert.True(image.LayerDigests.Count >= 3, $"the tree should make several layers, not {image.LayerDigests.Count}");
        return image;
    }

    /// <summary>
    /// A copy of the gzip image in <paramref name="dir"/> with one byte flipped in the middle of its
    /// largest layer: found only once that layer's bytes have streamed. Returns the copy's
    /// reference and the corrupt blob's hex digest.
    /// </summary>
    public (string Ref, string CorruptBlob) CorruptCopy(string dir)
    {
        Proc.Check("cp", "-a", Gzip.Layout, dir);
        var largest = new DirectoryInfo(Path.Join(dir, "blobs/sha256")).GetFiles()
            .Where(f => Gzip.LayerDigests.Contains("sha256:" + f.Name)).MaxBy(f => f.Length)!;
        using (var f = new FileStream(largest.FullName, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = f.Length / 2;
            int b = f.ReadByte();
            f.Position = f.Length / 2;
            f.WriteByte((byte)(b ^ 0xFF));
        }
        return ($"oci:{dir}:{Gzip.Tag}", largest.Name);
    }

    /// <summary>The bytes of a file of the source tree.</summary>
    public byte[] TreeFile(string path) => File.ReadAllBytes(Path.Join(Tree, path));

    public void Dispose() => Dir.Dispose();
}
