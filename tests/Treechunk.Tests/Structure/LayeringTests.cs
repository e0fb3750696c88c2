using System.Text.RegularExpressions;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Structure;

/// <summary>
/// The library's folders depend on each other one way only, as the README's architecture section
/// draws them: a folder may use the folders below it and never one above, so there are no cycles.
/// </summary>
public partial class LayeringTests
{
    // Each folder and what it may use (besides the root namespace's TreechunkException/ExitCodes).
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Posix"] = [],
        ["IO"] = ["Posix"],
        ["Trees"] = ["Posix", "IO"],
        ["Tar"] = ["Trees", "Posix", "IO"],
        ["Oci"] = ["Tar", "Trees", "Posix", "IO"],
        ["Registry"] = ["Oci", "IO", "Posix"],
        ["Transports"] = ["Registry", "Oci", "IO"],
        ["Layers"] = ["Oci", "Tar", "Trees", "Posix", "IO"],
        ["Packages"] = ["Trees", "Posix", "IO"],
        ["Chunking"] = ["Packages", "Trees", "Posix", "IO"],
        ["Ostree"] = ["Trees", "Posix", "IO"],
        ["Build"] = ["Chunking", "Packages", "Layers", "Oci", "Tar", "Trees", "Posix", "IO"],
        ["Encapsulation"] = ["Build", "Chunking", "Layers", "Ostree", "Oci", "Trees", "Posix", "IO"],
        // Deltas read layer annotations and images from any transport; oci diff counts their download.
        ["Delta"] = ["Transports", "Registry", "Oci", "Posix", "IO"],
        ["Diff"] = ["Delta", "Transports", "Registry", "Build", "Chunking", "Layers", "Oci", "Tar", "Trees", "Posix", "IO"],
        ["Runtimes"] = ["Transports", "Registry", "Oci", "Tar", "Trees", "Posix", "IO"],
        ["Signing"] = ["Transports", "Registry", "Oci", "Posix", "IO"],
        ["Scanning"] = ["Packages", "Oci", "Tar", "Trees", "Posix", "IO"],
        ["Compose"] = ["Encapsulation", "Build", "Chunking", "Packages", "Ostree", "Oci", "Trees", "Posix", "IO"],
    };

    [GeneratedRegex(@"\b(?:using\s+Treechunk\.|Treechunk\.|(?<![\w.])(?=(?:Posix|IO|Trees|Tar|Oci|Registry|Transports|Layers|Packages|Chunking|Ostree|Build|Encapsulation|Compose|Diff|Delta|Signing|Runtimes|Scanning)\.[A-Z]))(?<folder>Posix|IO|Trees|Tar|Oci|Registry|Transports|Layers|Packages|Chunking|Ostree|Build|Encapsulation|Compose|Diff|Delta|Signing|Runtimes|Scanning)\b")]
    private static partial Regex FolderReference();

    [Fact]
    public void Folders_only_use_the_folders_below_them()
    {
        var src = Path.Join(Fixtures.RepoRoot, "src/Treechunk");
        var folders = Directory.GetDirectories(src).Select(Path.GetFileName).Where(f => f is not ("bin" or "obj")).ToList();
        Assert.Equal(Allowed.Keys.Order(StringComparer.Ordinal), folders.Order(StringComparer.Ordinal));
        var violations = new List<string>();
        foreach (var folder in folders)
            foreach (var file in Directory.GetFiles(Path.Join(src, folder!), "*.cs"))
            {
                var code = string.Join('\n', File.ReadAllLines(file).Where(l => !l.TrimStart().StartsWith("//")));
                foreach (Match m in FolderReference().Matches(code))
                {
                    var used = m.Groups["folder"].Value;
                    if (used != folder && !Allowed[folder!].Contains(used)) violations.Add($"{folder}/{Path.GetFileName(file)} uses {used}");
                }
            }
        Assert.True(violations.Count == 0, string.Join("\n", violations.Distinct()));
    }
}
