using Treechunk.Compose;
using Treechunk.Oci;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Compose;

public class ForeignBinariesTests
{
    [Fact]
    public void A_foreign_compose_without_binfmt_names_what_to_install()
    {
        using var tmp = new TempDir("binfmt");
        var arm64 = Architectures.Find("aarch64");
        // Not mounted: no register file.
        var e = Assert.Throws<TreechunkException>(() => ForeignBinaries.CheckRunnable(arm64, tmp.Path));
        Assert.Equal(ExitCodes.EnvironmentError, e.ExitCode);
        Assert.Contains("binfmt_misc is not mounted", e.Message);
        Assert.Contains("qemu-user-static", e.Message);
        // Mounted, but no interpreter registered for the architecture.
        File.WriteAllText(tmp["register"], "");
        e = Assert.Throws<TreechunkException>(() => ForeignBinaries.CheckRunnable(arm64, tmp.Path));
        Assert.Contains("no qemu-aarch64 entry", e.Message);
        // Registered but disabled.
        File.WriteAllText(tmp["qemu-aarch64"], "disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n");
        e = Assert.Throws<TreechunkException>(() => ForeignBinaries.CheckRunnable(arm64, tmp.Path));
        Assert.Contains("disabled", e.Message);
        File.WriteAllText(tmp["qemu-aarch64"], "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n");
        ForeignBinaries.CheckRunnable(arm64, tmp.Path);
        // The host's own architecture needs none of it.
        ForeignBinaries.CheckRunnable(Architectures.Host, tmp["nowhere"]);
    }

    [Theory]
    [InlineData("x86_64", "amd64", "amd64", "x86_64", null)]
    [InlineData("aarch64", "arm64", "arm64", "aarch64", "v8")]
    [InlineData("ppc64el", "ppc64le", "ppc64el", "ppc64le", null)]
    [InlineData("armhf", "arm", "armhf", "armv7hl", "v7")]
    [InlineData("s390x", "s390x", "s390x", "s390x", null)]
    public void Every_spelling_of_an_architecture_means_the_same_one(string given, string oci, string debian, string rpm, string? variant)
    {
        var a = Architectures.Find(given);
        Assert.Equal((oci, debian, rpm, variant), (a.Oci, a.Debian, a.Rpm, a.Variant));
        Assert.Same(a, Architectures.Find(oci));
        Assert.Contains("unknown architecture 'sparc9'", Assert.Throws<TreechunkException>(() => Architectures.Find("sparc9")).Message);
    }
}
