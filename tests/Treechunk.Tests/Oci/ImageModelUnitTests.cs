using System.Text;
using Treechunk.IO;
using Treechunk.Oci;
using Treechunk.Tests.Support;
using Treechunk.Transports;

namespace Treechunk.Tests.Oci;

public class ImageReferenceTests
{
    [Theory]
    [InlineData("oci:/srv/img", "oci", "/srv/img", null, null)]
    [InlineData("oci:/srv/img:v1.2", "oci", "/srv/img", "v1.2", null)]
    [InlineData("oci:/a:b/c", "oci", "/a:b/c", null, null)]
    [InlineData("oci-archive:os.tar:latest", "oci-archive", "os.tar", "latest", null)]
    [InlineData("oci:/srv/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "oci", "/srv/img", null, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("/nonexistent/dir/img.tar", "oci-archive", "/nonexistent/dir/img.tar", null, null)]
    [InlineData("/nonexistent/dir/img", "oci", "/nonexistent/dir/img", null, null)]
    [InlineData("docker://quay.io/a/b:c", "docker", "//quay.io/a/b", "c", null)]
    [InlineData("docker://127.0.0.1:5000/os/base@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "docker", "//127.0.0.1:5000/os/base", null, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public void Parses_each_kind(string text, string transport, string location, string? tag, string? digest)
    {
        var r = ImageReference.Parse(text);
        Assert.Equal((transport, location, tag, digest), (r.Transport, r.Location, r.Tag, r.Digest));
        Assert.Equal(text.StartsWith("/") ? $"{transport}:{text}" : text, r.ToString());
    }

    [Fact]
    public void A_bare_path_is_what_is_there()
    {
        using var tmp = new TempDir("ref");
        Directory.CreateDirectory(tmp["dir.tar"]);
        File.WriteAllText(tmp["file"], "x");
        Assert.IsType<OciLayoutReference>(ImageReference.Parse(tmp["dir.tar"]));
        Assert.IsType<OciArchiveReference>(ImageReference.Parse(tmp["file"]));
        // The same rule for sources and destinations.
        Assert.IsType<OciArchiveReference>(ImageReference.Parse(tmp["file"], ReferenceRole.Destination));
        Assert.IsType<OciLayoutReference>(ImageReference.Parse(tmp["new"], ReferenceRole.Destination));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("oci:", "no path")]
    [InlineData("oci:/x:", "empty tag")]
    [InlineData("oci:/x:bad!tag", "invalid tag")]
    [InlineData("oci:/x@sha256:abc", "invalid or unsupported digest")]
    [InlineData("docker-archive:/x.tar", "not supported yet")]
    [InlineData("containers-storage:localhost/x", "not supported yet")]
    [InlineData("docker://Quay.io/A/b:c", "docker://Quay.io/A/b:c")]
    [InlineData("ftp://x/y", "unknown transport")]
    public void Refuses_bad_references(string text, string message) =>
        Assert.Contains(message, Assert.Throws<TreechunkException>(() => ImageReference.Parse(text)).Message);

    [Fact]
    public void A_destination_cannot_name_a_digest()
    {
        var text = "oci:/x@sha256:" + new string('a', 64);
        Assert.NotNull(ImageReference.Parse(text).Digest);
        Assert.Contains("names a digest", Assert.Throws<TreechunkException>(() => ImageReference.Parse(text, ReferenceRole.Destination)).Message);
    }
}

public class VerifyingStreamTests
{
    private static Descriptor Of(byte[] data) => new() { Digest = Digest.Sha256(data), Size = data.Length };

    [Fact]
    public void Passes_matching_bytes()
    {
        var data = Encoding.ASCII.GetBytes("hello blob");
        using var s = new VerifyingStream(new MemoryStream(data), Of(data), "blob");
        var copy = new MemoryStream();
        s.CopyTo(copy);
        Assert.Equal(data, copy.ToArray());
    }

    [Fact]
    public void Fails_at_the_end_on_a_wrong_digest_or_a_short_blob()
    {
        var data = Encoding.ASCII.GetBytes("hello blob");
        var wrong = (byte[])data.Clone();
        wrong[0] ^= 1;
        var e1 = Assert.Throws<TreechunkException>(() => new VerifyingStream(new MemoryStream(wrong), Of(data), "layer blob").CopyTo(Stream.Null));
        Assert.StartsWith($"layer blob {Of(data).Digest} is corrupt", e1.Message);
        Assert.Equal(ExitCodes.VerificationFailed, e1.ExitCode);
        var e2 = Assert.Throws<TreechunkException>(() => new VerifyingStream(new MemoryStream(data[..5]), Of(data), "blob").CopyTo(Stream.Null));
        Assert.Contains("5 bytes", e2.Message);
    }

    [Fact]
    public void Fails_as_soon_as_a_blob_is_longer_than_its_descriptor()
    {
        var data = new byte[100_000];
        var d = new Descriptor { Digest = Digest.Sha256(data.AsSpan(0, 10)), Size = 10 };
        using var s = new VerifyingStream(new MemoryStream(data), d, "blob");
        var buffer = new byte[64];
        Assert.Contains("more than the 10 bytes", Assert.Throws<TreechunkException>(() => s.Read(buffer, 0, 64)).Message);
    }

    [Fact]
    public void Drain_reports_instead_of_throwing()
    {
        var data = Encoding.ASCII.GetBytes("0123456789");
        using (var good = new VerifyingStream(new MemoryStream(data), Of(data), "blob"))
            Assert.Null(good.DrainAndCheck());
        using var bad = new VerifyingStream(new MemoryStream(data), Of("x"u8.ToArray()), "blob");
        Assert.Contains("is corrupt", bad.DrainAndCheck());
    }

    [Fact]
    public void ReadAll_bounds_what_it_reads()
    {
        var d = new Descriptor { Digest = Digest.Sha256("{}"u8), Size = 1L << 40 };
        Assert.Contains("implausibly large", Assert.Throws<TreechunkException>(() => VerifyingStream.ReadAll(new MemoryStream(), d, "config", 1 << 20)).Message);
    }
}

public class OciArchiveInPlaceTests
{
    [Fact]
    public void Blobs_are_read_at_their_offsets_and_ranges_are_exact()
    {
        using var tmp = new TempDir("archive");
        var blob = Enumerable.Range(0, 70_000).Select(i => (byte)(i * 7)).ToArray();
        var d = new Descriptor { MediaType = MediaTypes.Layer, Digest = Digest.Sha256(blob), Size = blob.Length };
        var manifest = OciJson.Serialize(new ImageManifest { Config = d, Layers = [d] });
        var md = new Descriptor { MediaType = MediaTypes.ImageManifest, Digest = Digest.Sha256(manifest), Size = manifest.Length };
        using (var dest = OciArchiveDestination.OpenOrCreate(tmp["a.tar"], force: false))
        {
            dest.PutBlob(d, BlobContent.FromBytes(blob));
            dest.PutManifest(md, manifest);
            dest.Tag(md, "t");
            dest.Commit();
        }
        using var source = OciArchiveSource.Open(tmp["a.tar"]);
        var (offset, size) = source.Members[OciLayout.BlobMember(d.Digest)];
        Assert.Equal(0, offset % 512);
        Assert.Equal(blob.Length, size);
        // The member's bytes really are at that offset of the file.
        using (var f = File.OpenRead(tmp["a.tar"]))
        {
            f.Seek(offset, SeekOrigin.Begin);
            var head = new byte[16];
            f.ReadExactly(head);
            Assert.Equal(blob[..16], head);
        }
        using (var range = source.OpenBlobRange(d, 65_000, 1_000))
        {
            var part = new MemoryStream();
            range.CopyTo(part);
            Assert.Equal(blob[65_000..66_000], part.ToArray());
        }
        Assert.Equal(md.Digest, source.Resolve("t", null).Digest);
        Assert.Equal(manifest, source.ReadManifest(source.Resolve(null, md.Digest)));
        Assert.Throws<TreechunkException>(() => source.OpenBlobRange(d, 69_999, 2));
    }

    [Fact]
    public void Adding_to_an_archive_keeps_its_images_and_packs_the_same_bytes_every_time()
    {
        using var tmp = new TempDir("archive-add");
        void Add(string file, string text, string tag)
        {
            var data = Encoding.UTF8.GetBytes(text);
            var d = new Descriptor { MediaType = MediaTypes.ImageManifest, Digest = Digest.Sha256(data), Size = data.Length };
            using var dest = OciArchiveDestination.OpenOrCreate(file, force: false);
            dest.PutManifest(d, data);
            dest.Tag(d, tag);
            dest.Commit();
        }
        Add(tmp["a.tar"], "{\"schemaVersion\":2,\"n\":1}", "one");
        Add(tmp["a.tar"], "{\"schemaVersion\":2,\"n\":2}", "two");
        Add(tmp["b.tar"], "{\"schemaVersion\":2,\"n\":1}", "one");
        Add(tmp["b.tar"], "{\"schemaVersion\":2,\"n\":2}", "two");
        using (var source = OciArchiveSource.Open(tmp["a.tar"]))
            Assert.Equal(["one", "two"], source.Index.Manifests.Select(m => m.Annotations![Annotations.RefName]));
        Assert.Equal(File.ReadAllBytes(tmp["a.tar"]), File.ReadAllBytes(tmp["b.tar"]));
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path, ".treechunk-*"));
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path, AtomicFile.TempPrefix + "*"));
    }
}

public class KeyFileTests
{
    [Fact]
    public void Strict_refuses_what_lenient_skips()
    {
        var text = "# comment\n[core]\nrepo_version=1\n  mode = archive-z2 \n[b]\nbaseurl=http://a/\n  http://b/\n";
        Assert.Contains("not a key file line", Assert.Throws<TreechunkException>(() => KeyFile.Parse(text, "cfg")).Message);
        var kf = KeyFile.Parse(text, "cfg", strict: false);
        Assert.Equal(["core", "b"], kf.Groups);
        Assert.Equal("archive-z2", kf.Get("core", "mode"));
        Assert.Equal("http://a/", kf.Get("b", "baseurl"));
        Assert.Null(kf.Get("core", "baseurl"));
    }
}
