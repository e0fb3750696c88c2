namespace Treechunk.Oci;

public static class Platforms
{
    /// <summary>The host architecture in OCI/Go naming.</summary>
    public static string HostArchitecture => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        System.Runtime.InteropServices.Architecture.X86 => "386",
        System.Runtime.InteropServices.Architecture.S390x => "s390x",
        System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
        System.Runtime.InteropServices.Architecture.RiscV64 => "riscv64",
        System.Runtime.InteropServices.Architecture.LoongArch64 => "loong64",
        var a => a.ToString().ToLowerInvariant(),
    };

    /// <summary>Accepts Go names and the distribution names people type (x86_64, aarch64).</summary>
    public static string Normalize(string arch) => Architectures.TryFind(arch)?.Oci ?? arch;

    /// <summary>Parses <c>os/arch[/variant]</c> (or a bare architecture, meaning linux), as <c>--platform</c> takes it.</summary>
    public static Platform Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length > 3 || parts.Any(p => p.Length == 0 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
            throw new TreechunkException($"--platform '{text}': expected OS/ARCH[/VARIANT], e.g. linux/arm64");
        return parts.Length == 1
            ? new Platform { Os = "linux", Architecture = Normalize(parts[0]) }
            : new Platform { Os = parts[0], Architecture = Normalize(parts[1]), Variant = parts.Length == 3 ? parts[2] : null };
    }
}

/// <summary>One CPU architecture under the names each ecosystem gives it.</summary>
/// <param name="Oci">GOARCH, as OCI configs and platforms say it.</param>
/// <param name="Variant">The OCI platform variant the image spec defines for it, if any.</param>
/// <param name="Debian">dpkg's name (mmdebstrap --architectures).</param>
/// <param name="Rpm">rpm's name (dnf --forcearch).</param>
/// <param name="Qemu">qemu-user's suffix (binfmt_misc entry qemu-NAME), to run its binaries here.</param>
public sealed record CpuArchitecture(string Oci, string? Variant, string Debian, string Rpm, string Qemu);

/// <summary>The architectures treechunk composes and labels images for, and every spelling it accepts.</summary>
public static class Architectures
{
    public static readonly IReadOnlyList<CpuArchitecture> Known =
    [
        new("amd64", null, "amd64", "x86_64", "x86_64"),
        new("arm64", "v8", "arm64", "aarch64", "aarch64"),
        new("arm", "v7", "armhf", "armv7hl", "arm"),
        new("386", null, "i386", "i686", "i386"),
        new("ppc64le", null, "ppc64el", "ppc64le", "ppc64le"),
        new("s390x", null, "s390x", "s390x", "s390x"),
        new("riscv64", null, "riscv64", "riscv64", "riscv64"),
        new("mips64le", null, "mips64el", "mips64el", "mips64el"),
        new("loong64", null, "loong64", "loongarch64", "loongarch64"),
    ];

    private static readonly Dictionary<string, string> Aliases = new(StringComparer.Ordinal)
    {
        ["x86-64"] = "amd64", ["i486"] = "386", ["i586"] = "386", ["armv7"] = "arm", ["armv7l"] = "arm", ["arm64/v8"] = "arm64", ["arm/v7"] = "arm",
    };

    /// <summary>The architecture any of its names means, or null.</summary>
    public static CpuArchitecture? TryFind(string name)
    {
        if (Aliases.TryGetValue(name, out var alias)) name = alias;
        return Known.FirstOrDefault(a => a.Oci == name || a.Debian == name || a.Rpm == name || a.Qemu == name);
    }

    /// <summary>The architecture a name means; an unknown name is a clear error listing the known ones.</summary>
    public static CpuArchitecture Find(string name, string context = "--arch") =>
        TryFind(name) ?? throw new TreechunkException($"{context}: unknown architecture '{name}' (known: {string.Join(", ", Known.Select(a => a.Oci))}, or their Debian/rpm names such as x86_64, aarch64, ppc64el)");

    /// <summary>The host's architecture.</summary>
    public static CpuArchitecture Host => Find(Platforms.HostArchitecture);
}
