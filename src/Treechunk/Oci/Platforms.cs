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
    public static string Normalize(string arch) => arch switch
    {
        "x86_64" or "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" or "i686" => "386",
        "armhf" or "armv7" or "armv7l" => "arm",
        "ppc64el" => "ppc64le",
        _ => arch,
    };

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
