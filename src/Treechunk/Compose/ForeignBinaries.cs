using Treechunk.Oci;

namespace Treechunk.Compose;

/// <summary>
/// A compose for another architecture runs that architecture's binaries (maintainer scripts,
/// postprocess): the kernel hands them to qemu-user through binfmt_misc. Checked before the
/// package manager starts, so the failure is one line naming what to install, not a maintainer
/// script's "Exec format error" minutes in.
/// </summary>
public static class ForeignBinaries
{
    public const string BinfmtDir = "/proc/sys/fs/binfmt_misc";

    /// <summary>Whether binaries of <paramref name="arch"/> run on this machine without emulation.</summary>
    public static bool RunsNatively(CpuArchitecture arch)
    {
        var host = Architectures.Host.Oci;
        return arch.Oci == host || (host == "amd64" && arch.Oci == "386") || (host == "arm64" && arch.Oci == "arm");
    }

    public static void CheckRunnable(CpuArchitecture arch) => CheckRunnable(arch, BinfmtDir);

    /// <summary>The check against another binfmt_misc directory (tests give one without entries).</summary>
    internal static void CheckRunnable(CpuArchitecture arch, string binfmtDir)
    {
        if (RunsNatively(arch)) return;
        var entry = Path.Join(binfmtDir, "qemu-" + arch.Qemu);
        if (!File.Exists(Path.Join(binfmtDir, "register")))
            throw new TreechunkException($"composing for {arch.Oci} on {Architectures.Host.Oci} runs {arch.Oci} binaries, and binfmt_misc is not mounted: mount -t binfmt_misc binfmt_misc {binfmtDir}, and install qemu-user-static", ExitCodes.EnvironmentError);
        string state;
        try { state = File.ReadAllText(entry); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TreechunkException($"composing for {arch.Oci} on {Architectures.Host.Oci} runs {arch.Oci} binaries, and binfmt_misc has no qemu-{arch.Qemu} entry: install qemu-user-static (apt-get install qemu-user-static binfmt-support)", ExitCodes.EnvironmentError);
        }
        if (!state.StartsWith("enabled", StringComparison.Ordinal))
            throw new TreechunkException($"binfmt_misc entry qemu-{arch.Qemu} is disabled: enable it (update-binfmts --enable qemu-{arch.Qemu}) to compose for {arch.Oci}", ExitCodes.EnvironmentError);
        // qemu-user-static registers with the F (fix binary) flag, so the interpreter need not
        // exist inside the tree being composed.
    }
}
