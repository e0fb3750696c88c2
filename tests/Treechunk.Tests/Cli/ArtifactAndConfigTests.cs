using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

/// <summary>What the JSON model does not know survives: artifact manifests in indexes, config members we do not model.</summary>
public class ArtifactAndConfigTests(SmallLayoutFixture fx) : IClassFixture<SmallLayoutFixture>
{
    private static string Hex(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    private static string Put(string layout, byte[] data)
    {
        var hex = Hex(data);
        File.WriteAllBytes(Path.Join(layout, "blobs/sha256", hex), data);
        return "sha256:" + hex;
    }

    /// <summary>Adds to a copy of the fixture's layout an index (tag with-sbom) listing the image and an SBOM artifact whose subject is the image.</summary>
    private (string IndexDigest, byte[] Index, string ArtifactDigest, byte[] Artifact) AddArtifactIndex(string layout)
    {
        var manifestSize = new FileInfo(Path.Join(layout, "blobs/sha256", fx.Digest[7..])).Length;
        var empty = "{}"u8.ToArray();
        var emptyDigest = Put(layout, empty);
        var sbom = "{\"spdxVersion\":\"SPDX-2.3\",\"name\":\"test\"}"u8.ToArray();
        var sbomDigest = Put(layout, sbom);
        var artifact = Encoding.UTF8.GetBytes(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"artifactType\":\"application/spdx+json\"," +
            $"\"config\":{{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"{emptyDigest}\",\"size\":2,\"data\":\"e30=\"}}," +
            $"\"layers\":[{{\"mediaType\":\"application/spdx+json\",\"digest\":\"{sbomDigest}\",\"size\":{sbom.Length}}}]," +
            $"\"subject\":{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{fx.Digest}\",\"size\":{manifestSize}}}," +
            "\"annotations\":{\"org.opencontainers.image.created\":\"2026-01-01T00:00:00Z\"},\"x-vendor\":{\"kept\":[1,2,3]}}");
        var artifactDigest = Put(layout, artifact);
        var index = Encoding.UTF8.GetBytes(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[" +
            $"{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{fx.Digest}\",\"size\":{manifestSize},\"platform\":{{\"architecture\":\"amd64\",\"os\":\"linux\",\"os.version\":\"12\"}}}}," +
            $"{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{artifactDigest}\",\"size\":{artifact.Length},\"artifactType\":\"application/spdx+json\"}}]," +
            "\"annotations\":{\"x\":\"y\"}}");
        var indexDigest = Put(layout, index);
        var top = JsonNode.Parse(File.ReadAllText(Path.Join(layout, "index.json")))!;
        top["manifests"]!.AsArray().Add(JsonNode.Parse(
            $"{{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"{indexDigest}\",\"size\":{index.Length},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"with-sbom\"}}}}"));
        File.WriteAllText(Path.Join(layout, "index.json"), top.ToJsonString());
        return (indexDigest, index, artifactDigest, artifact);
    }

    [Fact]
    public void An_index_with_an_artifact_manifest_survives_copy_byte_for_byte()
    {
        using var tmp = new TempDir("artifact");
        Proc.Check("cp", "-a", fx.Layout, tmp["src"]);
        var (indexDigest, index, artifactDigest, artifact) = AddArtifactIndex(tmp["src"]);

        var toArchive = JsonNode.Parse(TreechunkCli.Check("oci", "copy", $"oci:{tmp["src"]}:with-sbom", $"oci-archive:{tmp["a.tar"]}", "--json"))!;
        Assert.Equal(indexDigest, (string)toArchive["digest"]!);
        Assert.Equal(3, (int)toArchive["manifests"]!); // the index, the image, the artifact
        TreechunkCli.Check("oci", "copy", $"oci-archive:{tmp["a.tar"]}:with-sbom", $"oci:{tmp["dst"]}");

        Assert.Equal(index, File.ReadAllBytes(Path.Join(tmp["dst"], "blobs/sha256", indexDigest[7..])));
        Assert.Equal(artifact, File.ReadAllBytes(Path.Join(tmp["dst"], "blobs/sha256", artifactDigest[7..])));
        var raw = Proc.Run("bash", ["-c", $"dotnet '{Path.Join(AppContext.BaseDirectory, "treechunk.dll")}' oci inspect --raw oci:{tmp["dst"]}:with-sbom | sha256sum"]);
        Assert.Equal(indexDigest[7..], raw.Stdout.Split(' ')[0]);
        // skopeo reads the index from the archive as the same bytes.
        var skopeoRaw = Proc.Run("bash", ["-c", $"skopeo inspect --raw oci-archive:{tmp["a.tar"]}:with-sbom | sha256sum"]);
        Assert.Equal(indexDigest[7..], skopeoRaw.Stdout.Split(' ')[0]);
        // Commands that want an image pick the platform's manifest out of the index.
        var inspect = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci:{tmp["dst"]}:with-sbom", "--json"))!;
        Assert.Equal(fx.Digest, (string)inspect["manifest_digest"]!);
        Assert.Equal(indexDigest, (string)inspect["index_digest"]!);
        TreechunkCli.Check("oci", "verify-layers", $"oci:{tmp["dst"]}:with-sbom");
        // --platform copies one image out of the index, by its own digest.
        var single = JsonNode.Parse(TreechunkCli.Check("oci", "copy", "--platform", "linux/amd64", $"oci:{tmp["src"]}:with-sbom", $"oci:{tmp["single"]}:one", "--json"))!;
        Assert.Equal(fx.Digest, (string)single["digest"]!);
        Assert.Contains("no image for linux/s390x", TreechunkCli.Fails(2, "oci", "copy", "--platform", "linux/s390x", $"oci:{tmp["src"]}:with-sbom", $"oci:{tmp["none"]}"));
        // The artifact by digest is not an image: said so, not misread.
        Assert.Contains("artifact", TreechunkCli.Fails(2, "oci", "inspect", $"oci:{tmp["dst"]}@{artifactDigest}"));
    }

    [Fact]
    public void Rechunking_keeps_config_members_that_are_not_modelled()
    {
        using var tmp = new TempDir("healthcheck");
        var layer = CraftedImage.PythonTar("""
            add(t, 'etc/hostname', b'box\n')
            add(t, 'usr/bin/app', b'#!/bin/sh\n' * 500, mode=0o755)
            """);
        CraftedImage.WriteWithConfig(tmp["src"], diffIds =>
            "{\"created\":\"2025-05-05T05:05:05Z\",\"author\":\"someone@example.com\",\"architecture\":\"arm64\",\"variant\":\"v8\",\"os\":\"linux\",\"os.version\":\"12.1\"," +
            "\"config\":{\"Env\":[\"PATH=/usr/bin\"],\"Cmd\":[\"/usr/bin/app\"],\"Healthcheck\":{\"Test\":[\"CMD\",\"/usr/bin/app\",\"--check\"],\"Interval\":30000000000,\"Retries\":3}," +
            "\"OnBuild\":[\"RUN true\"],\"Shell\":[\"/bin/sh\",\"-c\"],\"ArgsEscaped\":true,\"Labels\":{\"org.example\":\"kept\"}}," +
            "\"container_config\":{\"Hostname\":\"builder\"},\"x-vendor\":{\"nested\":[1,{\"a\":null}]}," +
            $"\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":{diffIds}}},\"history\":[{{\"created_by\":\"crafted\"}}]}}", layer);
        var source = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", "--raw", "--config", tmp["src"]))!.AsObject();
        TreechunkCli.Check("compose", "build-chunked-oci", "--from", $"oci:{tmp["src"]}", "--output", $"oci:{tmp["out"]}:r");
        var result = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", "--raw", "--config", $"oci:{tmp["out"]}:r"))!.AsObject();

        var changed = new[] { "rootfs", "history" };
        Assert.Equal(source.Select(p => p.Key).Order(StringComparer.Ordinal), result.Select(p => p.Key).Order(StringComparer.Ordinal));
        foreach (var (key, value) in source)
        {
            if (changed.Contains(key)) Assert.False(JsonNode.DeepEquals(value, result[key]), $"{key} should be the rechunked image's own");
            else Assert.True(JsonNode.DeepEquals(value, result[key]), $"{key}: {value?.ToJsonString()} became {result[key]?.ToJsonString()}");
        }
        // SOURCE_DATE_EPOCH still wins over the source's created time.
        var epoch = TreechunkCli.RunWithEnv(new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "86400" },
            "compose", "build-chunked-oci", "--from", $"oci:{tmp["src"]}", "--output", $"oci:{tmp["out2"]}");
        Assert.True(epoch.ExitCode == 0, epoch.ToString());
        Assert.Equal("1970-01-02T00:00:00Z", (string)JsonNode.Parse(TreechunkCli.Check("oci", "inspect", "--raw", "--config", tmp["out2"]))!["created"]!);
    }
}
