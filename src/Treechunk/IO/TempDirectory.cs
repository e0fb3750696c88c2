using Treechunk.Posix;

namespace Treechunk.IO;

/// <summary>A private (0700) scratch directory, removed with everything in it on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; }

    private TempDirectory(string path) => Path = path;

    /// <param name="near">Parent directory (e.g. beside an output, so a final rename stays on one filesystem); default the system temp dir.</param>
    public static TempDirectory Create(string purpose, string? near = null)
    {
        var parent = near ?? System.IO.Path.GetTempPath();
        var path = System.IO.Path.Join(parent, $".treechunk-{purpose}-{Guid.NewGuid():N}");
        try
        {
            LibC.MkDir(path, 0x1C0);
        }
        catch (IOException e)
        {
            throw new TreechunkException($"cannot create a scratch directory in {parent}: {e.Message}", ExitCodes.EnvironmentError, e);
        }
        return new TempDirectory(path);
    }

    public void Dispose() => RemoveTree(Path);

    /// <summary>
    /// Removes a directory tree, best effort. Extracted trees may hold read-only directories, so
    /// they are made writable first; leftover temp files must not turn a finished job into a failure.
    /// </summary>
    public static void RemoveTree(string dir)
    {
        try
        {
            if (!Directory.Exists(dir)) return;
            try
            {
                Directory.Delete(dir, recursive: true);
                return;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            foreach (var d in Directory.EnumerateDirectories(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint }))
                LibC.Chmod(d, 0x1C0);
            LibC.Chmod(dir, 0x1C0);
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
