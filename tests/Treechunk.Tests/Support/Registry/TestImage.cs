using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Treechunk.Tests.Support.Registry;

/// <summary>What <see cref="TestImage.Write"/> made: the layout and its blobs' digests and sizes.</summary>
public sealed record TestImageInfo(string Layout, string ManifestDigest, long ManifestSize, string ConfigDigest, long ConfigSize, string LayerDigest, long LayerSize)
{
    /// <summary>The skopeo/containers-image reference of the layout's one image.</summary>
    public string OciRef => $"oci:{Layout}:latest";
    public long BlobBytes => ConfigSize + LayerSize;
    public string BlobPath(string digest) => System.IO.Path.Join(Layout, "blobs", "sha256", digest["sha256:".Length..]);
}

/// <summary>
/// A one-layer OCI layout for registry tests, made in-process (there is no network to pull a base
/// image from): a tar of one file of seeded random bytes, gzip-compressed by
/// <see cref="CraftedImage"/>. Random bytes do not compress, so the layer's size on the wire is
/// about <c>payloadBytes</c>, which the byte counters and cut offsets of the tests rely on.
/// </summary>
public static class TestImage
{
    public static TestImageInfo Write(string layoutDir, int payloadBytes = 100_000, int seed = 1)
    {
        var payload = new byte[payloadBytes];
        new Random(seed).NextBytes(payload);
        using var tar = new MemoryStream();
        using (var w = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "data.bin")
            {
                DataStream = new MemoryStream(payload),
                ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            });
        }
        CraftedImage.Write(layoutDir, tar.ToArray());

        var index = JsonNode.Parse(File.ReadAllText(Path.Join(layoutDir, "index.json")))!;
        var manifestDigest = (string)index["manifests"]![0]!["digest"]!;
        var manifestBytes = File.ReadAllBytes(Path.Join(layoutDir, "blobs", "sha256", manifestDigest["sha256:".Length..]));
        if ("sha256:" + Convert.ToHexStringLower(SHA256.HashData(manifestBytes)) != manifestDigest)
            throw new InvalidOperationException("crafted manifest does not match its digest");
        var manifest = JsonNode.Parse(manifestBytes)!;
        var layer = manifest["layers"]![0]!;
        return new TestImageInfo(layoutDir, manifestDigest, manifestBytes.Length,
            (string)manifest["config"]!["digest"]!, (long)manifest["config"]!["size"]!,
            (string)layer["digest"]!, (long)layer["size"]!);
    }
}

/// <summary>skopeo as the reference client: every run has a time limit, so a hung transfer fails the test.</summary>
public static class Skopeo
{
    public static ProcResult Run(params string[] args) => Proc.Run(Tools.Require("skopeo"), args, timeout: TimeSpan.FromMinutes(3));

    public static string Check(params string[] args)
    {
        var r = Run(args);
        if (r.ExitCode != 0) throw new Xunit.Sdk.XunitException($"skopeo {string.Join(' ', args)} failed: {r}");
        return r.Stdout;
    }

    /// <summary>Runs and asserts failure, returning stderr.</summary>
    public static string Fails(params string[] args)
    {
        var r = Run(args);
        if (r.ExitCode == 0) throw new Xunit.Sdk.XunitException($"skopeo {string.Join(' ', args)} should have failed: {r}");
        return r.Stderr;
    }
}
