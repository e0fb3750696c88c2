namespace Treechunk.Tests.Support;

/// <summary>A scratch directory removed when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; }

    public TempDir(string? prefix = null)
    {
        Path = System.IO.Path.Join(System.IO.Path.GetTempPath(), "treechunk-test-" + (prefix ?? "") + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string this[string relative] => System.IO.Path.Join(Path, relative);

    public void Dispose()
    {
        try
        {
            // chattr-free trees only; make everything writable first so read-only dirs do not block removal.
            Proc.Run("chmod", ["-R", "u+rwX", Path]);
            Directory.Delete(Path, recursive: true);
        }
        catch (Exception) { /* best effort: leftover temp files must not fail a test */ }
    }
}
