using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Treechunk.Tests.Support;

/// <summary>
/// Writes an OCI layout by hand around given layer tars, so tests can feed the tools images no
/// well-behaved writer would produce (path escapes, absolute symlink tricks).
/// </summary>
public static class CraftedImage
{
    public static void Write(string layoutDir, params byte[][] layerTars) => Write(layoutDir, null, layerTars);

    /// <param name="labelsJson">JSON object text for config.Labels, or null.</param>
    public static void Write(string layoutDir, string? labelsJson, params byte[][] layerTars) =>
        WriteWithConfig(layoutDir, diffIds => $"{{\"architecture\":\"amd64\",\"os\":\"linux\",{(labelsJson != null ? $"\"config\":{{\"Labels\":{labelsJson}}}," : "")}\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":{diffIds}}}}}", layerTars);

    /// <summary>A layout whose config is the text <paramref name="config"/> makes from the diff_ids (a JSON array).</summary>
    public static void WriteWithConfig(string layoutDir, Func<string, string> config, params byte[][] layerTars)
    {
        var blobs = Path.Join(layoutDir, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        string Put(byte[] data)
        {
            var hex = Convert.ToHexStringLower(SHA256.HashData(data));
            File.WriteAllBytes(Path.Join(blobs, hex), data);
            return "sha256:" + hex;
        }
        var layers = new List<string>();
        var diffIds = new List<string>();
        foreach (var tar in layerTars)
        {
            using var ms = new MemoryStream();
            using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(tar);
            var gzBytes = ms.ToArray();
            diffIds.Add("sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)));
            layers.Add($"{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"{Put(gzBytes)}\",\"size\":{gzBytes.Length}}}");
        }
        var configBytes = Encoding.UTF8.GetBytes(config("[" + string.Join(",", diffIds.Select(d => $"\"{d}\"")) + "]"));
        var configDigest = Put(configBytes);
        var manifest = Encoding.UTF8.GetBytes($"{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{configDigest}\",\"size\":{configBytes.Length}}},\"layers\":[{string.Join(",", layers)}]}}");
        var manifestDigest = Put(manifest);
        File.WriteAllText(Path.Join(layoutDir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        File.WriteAllText(Path.Join(layoutDir, "index.json"),
            $"{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{manifestDigest}\",\"size\":{manifest.Length},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"latest\"}}}}]}}");
    }

    /// <summary>Makes a tar with Python's tarfile from a small script body that adds members to 't'.</summary>
    public static byte[] PythonTar(string body)
    {
        var file = Path.Join(Path.GetTempPath(), "crafted-" + Guid.NewGuid().ToString("N") + ".tar");
        try
        {
            var script = "import tarfile, io\n" +
                         "def add(t, name, data=b'x', **kw):\n" +
                         "    i = tarfile.TarInfo(name); i.size = len(data)\n" +
                         "    for k, v in kw.items(): setattr(i, k, v)\n" +
                         "    t.addfile(i, io.BytesIO(data) if i.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else None)\n" +
                         $"with tarfile.open('{file}', 'w', format=tarfile.PAX_FORMAT) as t:\n" +
                         string.Join("\n", body.Split('\n').Select(l => "    " + l)) + "\n";
            Proc.Check("python3", "-c", script);
            return File.ReadAllBytes(file);
        }
        finally { File.Delete(file); }
    }
}
