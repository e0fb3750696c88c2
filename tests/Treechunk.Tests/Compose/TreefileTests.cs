using Treechunk.Compose;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Compose;

public class TreefileTests : IDisposable
{
    private readonly TempDir _tmp = new("treefile");

    public void Dispose() => _tmp.Dispose();

    private string Write(string relative, string text)
    {
        var full = _tmp[relative];
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, text);
        return full;
    }

    /// <summary>Loads and expects the one-line BadInput error the CLI would print; it must name the file.</summary>
    private static string Fails(string path, string? fileNamed = null)
    {
        var e = Assert.Throws<TreechunkException>(() => Treefile.Load(path));
        Assert.Equal(ExitCodes.BadInput, e.ExitCode);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(Path.GetFileName(fileNamed ?? path), e.Message);
        return e.Message;
    }

    private const string AptSources = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n";

    [Fact]
    public void Every_key_is_parsed()
    {
        Write("debian.sources", AptSources);
        Write("files/motd", "hello\n");
        var path = Write("t.yaml", """
            ref: example/x86_64/all
            repos: [debian]
            packages:
              - bash
              - coreutils  less
            exclude-packages: [nano]
            releasever: 12
            variant: important
            automatic-version-prefix: "12.1"
            add-files:
              - [files/motd, /etc/motd]
            remove-files:
              - /usr/share/doc
            postprocess:
              - |
                echo one > /etc/one
              - echo two
            units: [systemd-networkd.service, ssh.socket]
            container-cmd: /sbin/init --log-level=info
            oci:
              tag: v1
              labels:
                org.opencontainers.image.title: all
                org.example.version: 1.0
              annotations:
                org.opencontainers.image.vendor: me
              chunk-size: 10M
              chunk-algorithm: content-based
              max-layers: 40
              compression: zstd
              compression-level: 5
            """);
        var t = Treefile.Load(path);
        Assert.Equal(path, t.Path);
        Assert.Equal("example/x86_64/all", t.Ref);
        var repo = Assert.Single(t.Repos);
        Assert.Equal(new RepoDefinition("debian", _tmp["debian.sources"], RepoKind.Apt), repo);
        Assert.Equal(RepoKind.Apt, t.Backend);
        Assert.Equal(["bash", "coreutils", "less"], t.Packages);
        Assert.Equal(["nano"], t.ExcludePackages);
        Assert.Equal("12", t.Releasever);
        Assert.Equal("important", t.Variant);
        Assert.Equal("12.1", t.AutomaticVersionPrefix);
        Assert.Equal([(_tmp["files/motd"], "/etc/motd")], t.AddFiles);
        Assert.Equal(["/usr/share/doc"], t.RemoveFiles);
        Assert.Equal(["echo one > /etc/one\n", "echo two"], t.Postprocess);
        Assert.Equal(["systemd-networkd.service", "ssh.socket"], t.Units);
        Assert.Equal(["/sbin/init", "--log-level=info"], t.ContainerCmd);
        Assert.Equal("v1", t.Oci.Tag);
        Assert.Equal(new Dictionary<string, string> { ["org.opencontainers.image.title"] = "all", ["org.example.version"] = "1.0" }, t.Oci.Labels);
        Assert.Equal(new Dictionary<string, string> { ["org.opencontainers.image.vendor"] = "me" }, t.Oci.Annotations);
        Assert.Equal("10M", t.Oci.ChunkSize);
        Assert.Equal("content-based", t.Oci.ChunkAlgorithm);
        Assert.Equal(40, t.Oci.MaxLayers);
        Assert.Equal("zstd", t.Oci.Compression);
        Assert.Equal(5, t.Oci.CompressionLevel);
    }

    [Fact]
    public void Absent_keys_leave_defaults()
    {
        var t = Treefile.Load(Write("t.yaml", "packages: [bash]\n"));
        Assert.Null(t.Ref);
        Assert.Empty(t.Repos);
        Assert.Null(t.Backend);
        Assert.Null(t.ContainerCmd);
        Assert.Null(t.Oci.Tag);
        Assert.Empty(t.Oci.Labels);
        Assert.Null(t.Oci.MaxLayers);
    }

    [Fact]
    public void Json_is_accepted()
    {
        Write("fedora.repo", "[fedora]\nbaseurl=http://example/\n");
        var path = Write("t.json", "{\n\t\"ref\": \"fedora/x86_64/min\",\n\t\"repos\": [\"fedora\"],\n\t\"packages\": [\"bash\"],\n\t\"container-cmd\": [\"/bin/bash\", \"-l\"],\n\t\"oci\": {\"max-layers\": 8, \"labels\": {\"a\": \"b\"}}\n}\n");
        var t = Treefile.Load(path);
        Assert.Equal("fedora/x86_64/min", t.Ref);
        Assert.Equal(RepoKind.Dnf, t.Backend);
        Assert.Equal(["/bin/bash", "-l"], t.ContainerCmd);
        Assert.Equal(8, t.Oci.MaxLayers);
        Assert.Equal("b", t.Oci.Labels["a"]);
    }

    [Fact]
    public void Includes_merge_lists_first_and_let_the_includer_win_scalars()
    {
        Write("debian.sources", AptSources);
        Write("base.yml", """
            ref: base/ref
            releasever: "11"
            repos: [debian]
            packages: [systemd, bash]
            units: [a.service]
            postprocess: [echo base]
            container-cmd: [/sbin/init]
            oci:
              tag: base
              compression: gzip
              labels: {title: base, keep: yes}
            """);
        var path = Write("top.yaml", """
            include: base.yml
            ref: top/ref
            packages: [less, bash]
            units: [b.service]
            postprocess: [echo top]
            oci:
              labels: {title: top, extra: "1"}
              max-layers: 10
            """);
        var t = Treefile.Load(path);
        Assert.Equal("top/ref", t.Ref);
        Assert.Equal("11", t.Releasever);
        Assert.Equal(["systemd", "bash", "less"], t.Packages);
        Assert.Equal(["a.service", "b.service"], t.Units);
        Assert.Equal(["echo base", "echo top"], t.Postprocess);
        Assert.Equal(["/sbin/init"], t.ContainerCmd);
        Assert.Equal("debian", Assert.Single(t.Repos).Name);
        Assert.Equal("base", t.Oci.Tag);
        Assert.Equal("gzip", t.Oci.Compression);
        Assert.Equal(10, t.Oci.MaxLayers);
        Assert.Equal(new Dictionary<string, string> { ["title"] = "top", ["keep"] = "yes", ["extra"] = "1" }, t.Oci.Labels);
    }

    [Fact]
    public void A_list_of_includes_merges_in_order()
    {
        Write("a.yaml", "packages: [a]\nref: from-a\n");
        Write("b.yaml", "packages: [b]\nref: from-b\n");
        var t = Treefile.Load(Write("top.yaml", "include: [a.yaml, b.yaml]\npackages: [top]\n"));
        Assert.Equal(["a", "b", "top"], t.Packages);
        Assert.Equal("from-b", t.Ref);
    }

    [Fact]
    public void Nested_includes_resolve_paths_relative_to_each_file()
    {
        // top.yaml -> sub/mid.yaml -> sub/deeper/base.yaml; each names a repo and a file beside itself.
        Write("sub/deeper/debian.sources", AptSources);
        Write("sub/deeper/base-file", "b");
        Write("sub/mid-file", "m");
        Write("sub/deeper/base.yaml", "repos: [debian]\nadd-files: [[base-file, /etc/base]]\npackages: [base]\n");
        Write("sub/mid.yaml", "include: deeper/base.yaml\nadd-files: [[mid-file, /etc/mid]]\npackages: [mid]\n");
        var t = Treefile.Load(Write("top.yaml", "include: sub/mid.yaml\npackages: [top]\n"));
        Assert.Equal(["base", "mid", "top"], t.Packages);
        Assert.Equal(_tmp["sub/deeper/debian.sources"], Assert.Single(t.Repos).Path);
        Assert.Equal([(_tmp["sub/deeper/base-file"], "/etc/base"), (_tmp["sub/mid-file"], "/etc/mid")], t.AddFiles);
    }

    [Fact]
    public void Includer_add_file_replaces_included_one_for_the_same_destination()
    {
        Write("x", "x");
        Write("y", "y");
        Write("base.yaml", "add-files: [[x, /etc/f]]\n");
        var t = Treefile.Load(Write("top.yaml", "include: base.yaml\nadd-files: [[y, /etc/f]]\n"));
        Assert.Equal([(_tmp["y"], "/etc/f")], t.AddFiles);
    }

    [Fact]
    public void Include_cycle_is_refused_with_the_chain()
    {
        Write("a.yaml", "include: b.yaml\npackages: [a]\n");
        Write("b.yaml", "packages: [b]\ninclude: a.yaml\n");
        var msg = Fails(_tmp["a.yaml"], "b.yaml");
        Assert.Contains("include cycle: a.yaml -> b.yaml -> a.yaml", msg);
        Assert.Contains("(line 2)", msg);

        Write("self.yaml", "include: self.yaml\n");
        Assert.Contains("include cycle: self.yaml -> self.yaml", Fails(_tmp["self.yaml"]));
    }

    [Fact]
    public void Missing_include_is_named()
    {
        var msg = Fails(Write("t.yaml", "include: nope.yaml\n"));
        Assert.Contains("include 'nope.yaml': no such file", msg);
    }

    [Fact]
    public void Errors_in_an_included_file_name_that_file()
    {
        Write("base.yaml", "packages: bash\n");
        var msg = Fails(Write("top.yaml", "include: base.yaml\n"), "base.yaml");
        Assert.Contains("base.yaml: 'packages' must be a list of strings (line 1)", msg);
    }

    [Fact]
    public void Unknown_key_with_and_without_suggestion()
    {
        var msg = Fails(Write("t.yaml", "ref: x\npakages: [bash]\n"));
        Assert.Contains("unknown key 'pakages' (line 2)", msg);
        Assert.Contains("did you mean 'packages'?", msg);

        Assert.Contains("did you mean 'exclude-packages'?", Fails(Write("t.yaml", "exclude_packages: [bash]\n")));

        msg = Fails(Write("t.yaml", "frobnicate: true\n"));
        Assert.Contains("unknown key 'frobnicate' (line 1)", msg);
        Assert.DoesNotContain("did you mean", msg);

        Assert.Contains("rpm-ostree key that treechunk does not support", Fails(Write("t.yaml", "selinux: true\n")));
    }

    [Fact]
    public void Unknown_key_under_oci_with_and_without_suggestion()
    {
        var msg = Fails(Write("t.yaml", "oci:\n  tag: x\n  lables: {a: b}\n"));
        Assert.Contains("unknown key 'lables' in 'oci' (line 3)", msg);
        Assert.Contains("did you mean 'labels'?", msg);

        msg = Fails(Write("t.yaml", "oci:\n  registry: quay.io\n"));
        Assert.Contains("unknown key 'registry' in 'oci' (line 2)", msg);
        Assert.DoesNotContain("did you mean", msg);
    }

    [Fact]
    public void Yaml_syntax_error_has_line_and_column()
    {
        var msg = Fails(Write("t.yaml", "ref: x\npackages:\n  - bash\n - bad: [\n"));
        Assert.Matches(@"YAML syntax error at line \d+, column \d+: ", msg);
        Assert.DoesNotContain("Idx:", msg);

        msg = Fails(Write("t.yaml", "ref: \"unterminated\npackages: [a]\n"));
        Assert.Matches(@"at line \d+, column \d+", msg);
    }

    [Fact]
    public void Duplicate_key_is_an_error()
    {
        var msg = Fails(Write("t.yaml", "ref: a\nref: b\n"));
        Assert.Contains("line 2", msg);
    }

    [Fact]
    public void Missing_empty_and_non_mapping_files()
    {
        Assert.Contains("no-such.yaml: no such file", Fails(_tmp["no-such.yaml"]));
        Assert.Contains("empty file", Fails(Write("empty.yaml", "")));
        Assert.Contains("empty file", Fails(Write("comments.yaml", "# nothing here\n")));
        Assert.Contains("top level must be a mapping", Fails(Write("list.yaml", "- bash\n")));
        Assert.Contains("one", Fails(Write("two.yaml", "ref: a\n---\nref: b\n")));
    }

    [Fact]
    public void Repo_without_definition_names_both_files_looked_for()
    {
        var msg = Fails(Write("t.yaml", "repos: [fedora]\n"));
        Assert.Contains("repo 'fedora'", msg);
        Assert.Contains("fedora.sources", msg);
        Assert.Contains("fedora.repo", msg);
        Assert.Contains("(line 1)", msg);
    }

    [Fact]
    public void Repo_kind_comes_from_the_definition_file()
    {
        Write("deb.sources", AptSources);
        Write("rpm/fed.repo", "[fedora]\n");
        Write("rpm/updates.repo", "[updates]\n");
        var apt = Treefile.Load(Write("apt.yaml", "repos: [deb]\n"));
        Assert.Equal(RepoKind.Apt, Assert.Single(apt.Repos).Kind);
        Assert.Equal(RepoKind.Apt, apt.Backend);
        var dnf = Treefile.Load(Write("rpm/t.yaml", "repos: [fed, updates]\n"));
        Assert.Equal([RepoKind.Dnf, RepoKind.Dnf], dnf.Repos.Select(r => r.Kind));
        Assert.Equal(_tmp["rpm/updates.repo"], dnf.Repos[1].Path);
        Assert.Equal(RepoKind.Dnf, dnf.Backend);
    }

    [Fact]
    public void Mixed_repo_kinds_are_refused()
    {
        Write("deb.sources", AptSources);
        Write("fed.repo", "[fedora]\n");
        var msg = Fails(Write("t.yaml", "repos: [deb, fed]\n"));
        Assert.Contains("mix apt and dnf", msg);
        Assert.Contains("'deb'", msg);
        Assert.Contains("'fed'", msg);

        // Also when the two kinds meet only through an include.
        Write("base.yaml", "repos: [fed]\n");
        Assert.Contains("mix apt and dnf", Fails(Write("top.yaml", "include: base.yaml\nrepos: [deb]\n")));
    }

    [Fact]
    public void Ambiguous_or_path_like_repo_names_are_refused()
    {
        Write("both.sources", AptSources);
        Write("both.repo", "[x]\n");
        Assert.Contains("both both.sources and both.repo", Fails(Write("t.yaml", "repos: [both]\n")));
        Assert.Contains("plain name", Fails(Write("t.yaml", "repos: [../etc/x]\n")));
    }

    [Fact]
    public void Add_files_source_must_exist_and_destination_be_absolute()
    {
        var msg = Fails(Write("t.yaml", "packages: [a]\nadd-files:\n  - [missing.conf, /etc/x.conf]\n"));
        Assert.Contains("add-files source 'missing.conf': no such file", msg);
        Assert.Contains("(line 3)", msg);

        Write("present.conf", "x");
        Assert.Contains("must be an absolute path", Fails(Write("t.yaml", "add-files: [[present.conf, etc/x.conf]]\n")));
        Assert.Contains("must not contain '..'", Fails(Write("t.yaml", "add-files: [[present.conf, /etc/../../x]]\n")));
        Assert.Contains("[source, destination] pairs", Fails(Write("t.yaml", "add-files: [present.conf]\n")));
        Assert.Contains("[source, destination] pairs", Fails(Write("t.yaml", "add-files: [[present.conf, /a, /b]]\n")));
        Directory.CreateDirectory(_tmp["adir"]);
        Assert.Contains("is a directory", Fails(Write("t.yaml", "add-files: [[adir, /a]]\n")));
    }

    [Theory]
    [InlineData("packages: bash", "'packages' must be a list of strings (line 1)")]
    [InlineData("packages:\n  - [bash]", "'packages' must be a list of strings (line 2)")]
    [InlineData("packages:\n  - bash\n  - {a: b}", "'packages' must be a list of strings (line 3)")]
    [InlineData("ref: [a]", "'ref' must be a string (line 1)")]
    [InlineData("ref:", "'ref' must be a string (line 1)")]
    [InlineData("units: {a: b}", "'units' must be a list of strings (line 1)")]
    [InlineData("postprocess: echo hi", "'postprocess' must be a list of strings (line 1)")]
    [InlineData("repos: debian", "'repos' must be a list of strings (line 1)")]
    [InlineData("include: {a: b}", "'include' must be a path or a list of paths (line 1)")]
    [InlineData("container-cmd: {a: b}", "'container-cmd' must be a list of strings or a string (line 1)")]
    [InlineData("container-cmd: []", "'container-cmd' must not be empty (line 1)")]
    [InlineData("container-cmd: sh -c 'echo hi'", "write it as a list")]
    [InlineData("remove-files: [../../etc]", "must not contain '..'")]
    [InlineData("oci: latest", "'oci' must be a mapping")]
    [InlineData("oci:\n  max-layers: many", "'oci.max-layers' must be an integer (line 2)")]
    [InlineData("oci:\n  max-layers: 0", "'oci.max-layers' must be at least 1 (line 2)")]
    [InlineData("oci:\n  compression-level: 1.5", "'oci.compression-level' must be an integer (line 2)")]
    [InlineData("oci:\n  labels: [a, b]", "'oci.labels' must be a mapping of names to strings (line 2)")]
    [InlineData("oci:\n  annotations:\n    a: [x]", "'oci.annotations' must be a mapping of names to strings (line 3)")]
    [InlineData("oci:\n  chunk-size: lots", "invalid oci.chunk-size 'lots'")]
    [InlineData("oci:\n  compression: brotli", "unknown compression 'brotli'")]
    [InlineData("oci:\n  chunk-algorithm: random", "unknown chunk algorithm 'random'")]
    public void Wrong_value_types_are_reported_with_the_line(string yaml, string expected)
    {
        Assert.Contains(expected, Fails(Write("t.yaml", yaml + "\n")));
    }

    [Fact]
    public void Chunk_size_may_be_a_number()
    {
        var t = Treefile.Load(Write("t.yaml", "oci:\n  chunk-size: 1048576\n"));
        Assert.Equal("1048576", t.Oci.ChunkSize);
    }

    [Fact]
    public void Suggestions_use_edit_distance_with_transpositions()
    {
        Assert.Equal(1, TreefileReader.EditDistance("pakcages", "packages"));
        Assert.Equal(1, TreefileReader.EditDistance("pakages", "packages"));
        Assert.Equal(1, TreefileReader.EditDistance("unit", "units"));
        Assert.Equal(0, TreefileReader.EditDistance("", ""));
    }

    [Fact]
    public void Examples_load_and_say_what_the_readme_relies_on()
    {
        var examples = Path.Join(Fixtures.RepoRoot, "examples");

        var min = Treefile.Load(Path.Join(examples, "debian-minimal/treefile.yaml"));
        Assert.Equal("debian/bookworm/${basearch}/minimal", min.Ref);
        var repo = Assert.Single(min.Repos);
        Assert.Equal(("debian", RepoKind.Apt), (repo.Name, repo.Kind));
        Assert.Equal(Path.Join(examples, "debian-minimal/debian.sources"), repo.Path);
        var sources = File.ReadAllText(repo.Path);
        Assert.Contains("Suites: bookworm\n", sources);
        Assert.Contains("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg", sources);
        Assert.Contains("systemd", min.Packages);
        Assert.Contains("systemd-sysv", min.Packages);
        Assert.True(min.Packages.Count <= 6, "debian-minimal must stay small: CI installs it");
        Assert.Equal("12", min.AutomaticVersionPrefix);
        Assert.Contains("systemd-networkd.service", min.Units);
        Assert.Single(min.Postprocess);
        Assert.Equal(["/sbin/init"], min.ContainerCmd);
        Assert.Equal("latest", min.Oci.Tag);
        Assert.Equal("gzip", min.Oci.Compression);
        Assert.Equal("debian-minimal", min.Oci.Labels["org.opencontainers.image.title"]);

        var lab = Treefile.Load(Path.Join(examples, "debian-labeled/treefile.yaml"));
        Assert.Equal("debian/bookworm/x86_64/labeled", lab.Ref);
        Assert.Equal(min.Repos, lab.Repos);
        Assert.Equal([.. min.Packages, "less"], lab.Packages);
        Assert.Equal(min.Units, lab.Units);
        Assert.Equal(min.Postprocess, lab.Postprocess);
        Assert.Equal(min.ContainerCmd, lab.ContainerCmd);
        Assert.Equal("latest", lab.Oci.Tag);
        Assert.Equal("debian-labeled", lab.Oci.Labels["org.opencontainers.image.title"]);
        Assert.Equal(min.Oci.Labels["org.opencontainers.image.description"], lab.Oci.Labels["org.opencontainers.image.description"]);
        Assert.NotEmpty(lab.Oci.Annotations);
        Assert.Equal("8M", lab.Oci.ChunkSize);
        Assert.Equal(32, lab.Oci.MaxLayers);
    }
}
