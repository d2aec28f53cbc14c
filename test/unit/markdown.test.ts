// The Explain panel's Markdown renderer: each block and inline construct a model's answer uses, the safety of what
// reaches the webview (no markup from the source, only http(s)/mailto links), and every prefix of a streamed answer.
// Every rendering here also goes through checkHtml: balanced tags, only the renderer's own tags and attributes, and
// text with nothing left unescaped.
import { describe, expect, it } from "vitest";

import { renderMarkdown } from "../../extension/core/markdown";

/** The tags the renderer may write, attributes included; anything else in its output came from the source. */
const ALLOWED_TAGS = [
  /^<\/?(?:p|h[1-6]|pre|code|blockquote|ul|ol|li|table|thead|tbody|tr|th|td|strong|em|del|a)>$/,
  /^<(?:br|hr)>$/,
  /^<ol start="\d+">$/,
  /^<code class="language-[A-Za-z0-9_+-]+">$/,
  /^<a href="(?:https?:|mailto:)[^"<>]*">$/i,
  /^<t[hd] class="align-(?:left|center|right)">$/,
];
const VOID_TAGS = new Set(["br", "hr"]);

/** Throws unless `html` is well-formed in the ways the panel relies on. */
function checkHtml(html: string): void {
  const open: string[] = [];
  for (const part of html.split(/(<[^>]*>)/)) {
    if (!part.startsWith("<")) {
      // Text: escaped, with "&" only starting one of the renderer's five entities.
      if (/[<>"']/.test(part) || /&(?!(?:amp|lt|gt|quot|#39);)/.test(part)) throw new Error(`unescaped text ${JSON.stringify(part)} in ${html}`);
      continue;
    }
    if (!ALLOWED_TAGS.some((tag) => tag.test(part))) throw new Error(`foreign tag ${part} in ${html}`);
    const name = /^<\/?([a-z0-9]+)/.exec(part)![1];
    if (VOID_TAGS.has(name)) continue;
    if (!part.startsWith("</")) open.push(name);
    else if (open.pop() !== name) throw new Error(`${part} closes the wrong tag in ${html}`);
  }
  if (open.length > 0) throw new Error(`unclosed ${open.join(", ")} in ${html}`);
}

function md(source: string): string {
  const html = renderMarkdown(source);
  checkHtml(html);
  return html;
}

describe("blocks", () => {
  it("renders ATX headings, with closing hashes only when they stand apart", () => {
    expect(md("# Title")).toBe("<h1>Title</h1>");
    expect(md("###### Six *deep*")).toBe("<h6>Six <em>deep</em></h6>");
    expect(md("## Closed ##")).toBe("<h2>Closed</h2>");
    expect(md("## C#")).toBe("<h2>C#</h2>");
    expect(md("####### seven")).toBe("<p>####### seven</p>");
    expect(md("#hashtag")).toBe("<p>#hashtag</p>");
    expect(md("Intro\n## Next")).toBe("<p>Intro</p>\n<h2>Next</h2>");
  });

  it("joins a paragraph's lines with a newline, and breaks at two trailing spaces or a backslash", () => {
    expect(md("one\ntwo")).toBe("<p>one\ntwo</p>");
    expect(md("one  \ntwo")).toBe("<p>one<br>\ntwo</p>");
    expect(md("one\\\ntwo")).toBe("<p>one<br>\ntwo</p>");
    expect(md("one \ntwo  ")).toBe("<p>one\ntwo</p>");
    expect(md("  a\r\n  b\r\n\r\nc")).toBe("<p>a\nb</p>\n<p>c</p>");
    expect(md("")).toBe("");
  });

  it("renders fenced code verbatim, with the info string's first word as a sanitized language class", () => {
    expect(md("```python\ndef f():\n    return 1 < 2\n```")).toBe(
      '<pre><code class="language-python">def f():\n    return 1 &lt; 2\n</code></pre>',
    );
    expect(md("~~~\n**not bold** <b>\n~~~")).toBe("<pre><code>**not bold** &lt;b&gt;\n</code></pre>");
    expect(md("````md\n```\ninner\n```\n````")).toBe('<pre><code class="language-md">```\ninner\n```\n</code></pre>');
    expect(md("```\n~~~\n```")).toBe("<pre><code>~~~\n</code></pre>");
    expect(md("```c++ {linenos}\nx\n```")).toContain('<code class="language-c++">');
    expect(md("```python:main.py\nx\n```")).toContain('<code class="language-python">');
    expect(md('```"><script>\nx\n```')).toBe("<pre><code>x\n</code></pre>");
    expect(md("Here:\n```js\nf()\n```\nAfter")).toBe('<p>Here:</p>\n<pre><code class="language-js">f()\n</code></pre>\n<p>After</p>');
  });

  it("takes a fence's indentation off its lines, and keeps ```x``` on one line as inline code", () => {
    expect(md("  ```\n  a\n    b\n c\n  ```")).toBe("<pre><code>a\n  b\nc\n</code></pre>");
    expect(md("```x``` y")).toBe("<p><code>x</code> y</p>");
  });

  it("renders an unterminated fence at the end of the input as code holding the rest", () => {
    expect(md("Look:\n```ts\nconst a = 1;\nconst b")).toBe('<p>Look:</p>\n<pre><code class="language-ts">const a = 1;\nconst b\n</code></pre>');
    expect(md("```python")).toBe('<pre><code class="language-python"></code></pre>');
    expect(md("````\n```\nstill code")).toBe("<pre><code>```\nstill code\n</code></pre>");
  });

  it("renders bullet lists, a new list for a different bullet", () => {
    expect(md("- a\n- b")).toBe("<ul>\n<li>a</li>\n<li>b</li>\n</ul>");
    expect(md("* a\n+ b")).toBe("<ul>\n<li>a</li>\n</ul>\n<ul>\n<li>b</li>\n</ul>");
  });

  it("renders ordered lists with their start number", () => {
    expect(md("1. a\n2. b")).toBe("<ol>\n<li>a</li>\n<li>b</li>\n</ol>");
    expect(md("3) c\n4) d")).toBe('<ol start="3">\n<li>c</li>\n<li>d</li>\n</ol>');
    expect(md("0. zero")).toBe('<ol start="0">\n<li>zero</li>\n</ol>');
    expect(md("1. a\n1) b")).toBe("<ol>\n<li>a</li>\n</ol>\n<ol>\n<li>b</li>\n</ol>");
  });

  it("nests lists by indentation, also two spaces under an ordered item", () => {
    expect(md("- a\n  - b\n    - c\n- d")).toBe(
      "<ul>\n<li>a\n<ul>\n<li>b\n<ul>\n<li>c</li>\n</ul></li>\n</ul></li>\n<li>d</li>\n</ul>",
    );
    const nested = "<ol>\n<li>a\n<ul>\n<li>b</li>\n</ul></li>\n<li>c</li>\n</ol>";
    expect(md("1. a\n   - b\n2. c")).toBe(nested);
    expect(md("1. a\n  - b\n2. c")).toBe(nested);
    expect(md("1. a\n    - b\n2. c")).toBe(nested);
    expect(md("- a\n - b")).toBe("<ul>\n<li>a</li>\n<li>b</li>\n</ul>");
  });

  it("keeps the lines and paragraphs of an item together, with <p> when items are apart", () => {
    expect(md("- a\ncontinued\n- b")).toBe("<ul>\n<li>a\ncontinued</li>\n<li>b</li>\n</ul>");
    expect(md("1. First\n\n   More about first.\n2. Second")).toBe(
      "<ol>\n<li><p>First</p>\n<p>More about first.</p></li>\n<li><p>Second</p></li>\n</ol>",
    );
    expect(md("- a\n\n- b")).toBe("<ul>\n<li><p>a</p></li>\n<li><p>b</p></li>\n</ul>");
    expect(md("1. Run:\n   ```sh\n   npm test\n\n   npm run lint\n   ```\n2. Done")).toBe(
      '<ol>\n<li>Run:\n<pre><code class="language-sh">npm test\n\nnpm run lint\n</code></pre></li>\n<li>Done</li>\n</ol>',
    );
  });

  it("ends a list at an unindented line after a blank one, or at another block", () => {
    expect(md("- a\n\nText")).toBe("<ul>\n<li>a</li>\n</ul>\n<p>Text</p>");
    expect(md("- a\n# H")).toBe("<ul>\n<li>a</li>\n</ul>\n<h1>H</h1>");
    expect(md("- a\n---")).toBe("<ul>\n<li>a</li>\n</ul>\n<hr>");
  });

  it("starts a list under a paragraph line only with a bullet or 1", () => {
    expect(md("Steps:\n1. a\n2. b")).toBe("<p>Steps:</p>\n<ol>\n<li>a</li>\n<li>b</li>\n</ol>");
    expect(md("Notes:\n- a")).toBe("<p>Notes:</p>\n<ul>\n<li>a</li>\n</ul>");
    expect(md("It was released in\n2024. It is fast.")).toBe("<p>It was released in\n2024. It is fast.</p>");
  });

  it("renders blockquotes holding any blocks, with lazy continuation lines", () => {
    expect(md("> a\n> b")).toBe("<blockquote>\n<p>a\nb</p>\n</blockquote>");
    expect(md("> a\nb")).toBe("<blockquote>\n<p>a\nb</p>\n</blockquote>");
    expect(md("> a\n\nb")).toBe("<blockquote>\n<p>a</p>\n</blockquote>\n<p>b</p>");
    expect(md("> ## Note\n> - x\n>\n> > deeper")).toBe(
      "<blockquote>\n<h2>Note</h2>\n<ul>\n<li>x</li>\n</ul>\n<blockquote>\n<p>deeper</p>\n</blockquote>\n</blockquote>",
    );
  });

  it("renders horizontal rules, also right under a paragraph line", () => {
    for (const rule of ["---", "***", "___", "- - -", " * * * *"]) expect(md(rule)).toBe("<hr>");
    expect(md("a\n---\nb")).toBe("<p>a</p>\n<hr>\n<p>b</p>");
    expect(md("--")).toBe("<p>--</p>");
  });

  it("renders pipe tables with alignment and escaped pipes", () => {
    expect(md("| Name | Type | Default |\n|:-----|:----:|--------:|\n| `n` | int | 1 |\n| a \\| b | `x \\| y` | |")).toBe(
      "<table>\n<thead>\n" +
        '<tr><th class="align-left">Name</th><th class="align-center">Type</th><th class="align-right">Default</th></tr>\n' +
        "</thead>\n<tbody>\n" +
        '<tr><td class="align-left"><code>n</code></td><td class="align-center">int</td><td class="align-right">1</td></tr>\n' +
        '<tr><td class="align-left">a | b</td><td class="align-center"><code>x | y</code></td><td class="align-right"></td></tr>\n' +
        "</tbody>\n</table>",
    );
  });

  it("renders tables without outer pipes, pads short rows, and ends them at a line without a pipe", () => {
    expect(md("a | b\n--|--\n1\n")).toBe("<table>\n<thead>\n<tr><th>a</th><th>b</th></tr>\n</thead>\n</table>\n<p>1</p>");
    expect(md("Table:\n| a | b |\n| --- | --- |\n| 1 |\n| 1 | 2 | 3 |\nAfter")).toBe(
      "<p>Table:</p>\n<table>\n<thead>\n<tr><th>a</th><th>b</th></tr>\n</thead>\n<tbody>\n" +
        "<tr><td>1</td><td></td></tr>\n<tr><td>1</td><td>2</td></tr>\n</tbody>\n</table>\n<p>After</p>",
    );
    expect(md("| a | b |\n| --- |")).toBe("<p>| a | b |\n| --- |</p>");
  });
});

describe("inline", () => {
  it("renders code spans of any backtick length verbatim", () => {
    expect(md("`a`")).toBe("<p><code>a</code></p>");
    expect(md("``a ` b``")).toBe("<p><code>a ` b</code></p>");
    expect(md("`` `x` ``")).toBe("<p><code>`x`</code></p>");
    expect(md("`*x* \\n <b> [a](https://x)`")).toBe("<p><code>*x* \\n &lt;b&gt; [a](https://x)</code></p>");
    expect(md("`a\nb`")).toBe("<p><code>a b</code></p>");
    expect(md("*a `*` b*")).toBe("<p><em>a <code>*</code> b</em></p>");
  });

  it("renders strong, emphasis and strikethrough", () => {
    expect(md("**b** __b__ *i* _i_ ~~s~~")).toBe("<p><strong>b</strong> <strong>b</strong> <em>i</em> <em>i</em> <del>s</del></p>");
    expect(md("***both***")).toBe("<p><em><strong>both</strong></em></p>");
    expect(md("*a **b** c*")).toBe("<p><em>a <strong>b</strong> c</em></p>");
    expect(md("foo*bar*baz")).toBe("<p>foo<em>bar</em>baz</p>");
    expect(md("**bold\nacross lines**")).toBe("<p><strong>bold\nacross lines</strong></p>");
  });

  it("leaves intraword underscores and spaced stars literal", () => {
    expect(md("snake_case_names and my_var_2")).toBe("<p>snake_case_names and my_var_2</p>");
    expect(md("call get_user_id(user_name)")).toBe("<p>call get_user_id(user_name)</p>");
    expect(md("_private_var_ here")).toBe("<p><em>private_var</em> here</p>");
    expect(md("2 * 3 * 4")).toBe("<p>2 * 3 * 4</p>");
    expect(md("~5 ms, ~single~ and ~~~three~~~")).toBe("<p>~5 ms, ~single~ and ~~~three~~~</p>");
  });

  it("resolves backslash escapes of punctuation only", () => {
    expect(md("\\*not em\\* \\_ \\` \\[x\\] \\\\")).toBe("<p>*not em* _ ` [x] \\</p>");
    expect(md("C:\\path\\to")).toBe("<p>C:\\path\\to</p>");
    expect(md("\\<b\\>")).toBe("<p>&lt;b&gt;</p>");
  });

  it("renders unclosed markers literally", () => {
    expect(md("**bold")).toBe("<p>**bold</p>");
    expect(md("*a")).toBe("<p>*a</p>");
    expect(md("__a_")).toBe("<p>_<em>a</em></p>");
    expect(md("~~s")).toBe("<p>~~s</p>");
    expect(md("`code")).toBe("<p>`code</p>");
    expect(md("``a`")).toBe("<p>``a`</p>");
    expect(md("[link")).toBe("<p>[link</p>");
    expect(md("[a](https://x")).toBe("<p>[a](https://x</p>");
    expect(md("[a](https://x \"title")).toBe("<p>[a](https://x &quot;title</p>");
    expect(md("a]")).toBe("<p>a]</p>");
  });

  it("links http, https and mailto URLs", () => {
    expect(md("[docs](https://docs.python.org/3/)")).toBe('<p><a href="https://docs.python.org/3/">docs</a></p>');
    expect(md("[x](HTTP://a.com)")).toBe('<p><a href="HTTP://a.com">x</a></p>');
    expect(md("[mail](mailto:a@b.c)")).toBe('<p><a href="mailto:a@b.c">mail</a></p>');
    expect(md("[*em* `c`](http://x)")).toBe('<p><a href="http://x"><em>em</em> <code>c</code></a></p>');
    expect(md("[w](https://en.wikipedia.org/wiki/Foo_(bar))")).toBe('<p><a href="https://en.wikipedia.org/wiki/Foo_(bar)">w</a></p>');
    expect(md("[a](<https://x.com/a b>)")).toBe('<p><a href="https://x.com/a b">a</a></p>');
    expect(md("[q](https://x.com/?a=1&b=2)")).toBe('<p><a href="https://x.com/?a=1&amp;b=2">q</a></p>');
    expect(md("[t](https://x.com 'title')")).toBe('<p><a href="https://x.com">t</a></p>');
    expect(md("[e](https://x.com/\\))")).toBe('<p><a href="https://x.com/)">e</a></p>');
  });

  it("does not nest links, and pairs emphasis inside a link only", () => {
    expect(md("[a [b](https://b)](https://a)")).toBe('<p>[a <a href="https://b">b</a>](https://a)</p>');
    expect(md("*a [b* c](https://x)")).toBe('<p>*a <a href="https://x">b* c</a></p>');
    expect(md("**[b](https://x)**")).toBe('<p><strong><a href="https://x">b</a></strong></p>');
  });

  it("renders other links as their text and images as their alt text", () => {
    expect(md("see [main.ts](./src/main.ts)")).toBe("<p>see main.ts</p>");
    expect(md("[open](vscode:extension/x)")).toBe("<p>open</p>");
    expect(md("[empty]()")).toBe("<p>empty</p>");
    expect(md("before ![a *diagram* `x`](https://example.com/d.png) after")).toBe("<p>before a diagram x after</p>");
    expect(md("[![badge](https://x/b.svg)](https://x)")).toBe('<p><a href="https://x">badge</a></p>');
  });
});

describe("safety", () => {
  it("shows raw HTML as text", () => {
    expect(md("<script>alert(1)</script>")).toBe("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
    expect(md('<img src=x onerror="alert(1)">')).toBe("<p>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</p>");
    expect(md("# <b>x</b>")).toBe("<h1>&lt;b&gt;x&lt;/b&gt;</h1>");
    expect(md("- <i>x</i>")).toBe("<ul>\n<li>&lt;i&gt;x&lt;/i&gt;</li>\n</ul>");
    expect(md("| <th> |\n|--|\n| <td onclick=x> |")).toContain("<td>&lt;td onclick=x&gt;</td>");
    expect(md("```\n</code></pre><script>x</script>\n```")).toBe("<pre><code>&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;\n</code></pre>");
    expect(md("[<b>x</b>](https://a.com)")).toBe('<p><a href="https://a.com">&lt;b&gt;x&lt;/b&gt;</a></p>');
    expect(md("it's \"quoted\"")).toBe("<p>it&#39;s &quot;quoted&quot;</p>");
  });

  it("shows HTML entities as written", () => {
    expect(md("&lt;script&gt; &amp; &#60; &copy;")).toBe("<p>&amp;lt;script&amp;gt; &amp;amp; &amp;#60; &amp;copy;</p>");
  });

  it("never links javascript:, data:, vscode: or relative URLs, however written", () => {
    for (const url of [
      "javascript:alert(1)",
      "JavaScript:alert(1)",
      " javascript:alert(1)",
      "<javascript:alert(1)>",
      "< https://x.com>",
      "&#106;avascript:alert(1)",
      "java\\script:alert(1)",
      "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
      "vscode:command/workbench.action.terminal.new",
      "command:workbench.action.terminal.new",
      "//evil.example.com",
      "/etc/passwd",
      "file:///etc/passwd",
    ]) {
      expect(md(`[click](${url})`), url).toBe("<p>click</p>");
    }
  });

  it("keeps quotes and titles out of the href", () => {
    expect(md('[x](https://a.com/"onmouseover="alert(1))')).toBe('<p><a href="https://a.com/&quot;onmouseover=&quot;alert(1)">x</a></p>');
    expect(md("[x](https://a.com/'onmouseover='alert(1))")).toBe('<p><a href="https://a.com/&#39;onmouseover=&#39;alert(1)">x</a></p>');
    expect(md('[x](https://a.com "onmouseover=alert(1)")')).toBe('<p><a href="https://a.com">x</a></p>');
    expect(md('[x](https://a.com ""><script>alert(1)</script>")')).toBe(
      "<p>[x](https://a.com &quot;&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;)</p>",
    );
    expect(md('[x](<https://a.com/" onclick="x>)')).toBe('<p><a href="https://a.com/&quot; onclick=&quot;x">x</a></p>');
    expect(md("[x](<https://a.com/\"><img>)")).toBe("<p>[x](&lt;https://a.com/&quot;&gt;&lt;img&gt;)</p>");
  });

  it("loads no image and keeps only a sanitized word of the info string", () => {
    expect(md('![x" onerror="alert(1)](https://evil.example.com/x.png)')).toBe("<p>x&quot; onerror=&quot;alert(1)</p>");
    expect(md('```js" onload="x\ny\n```')).toBe('<pre><code class="language-js">y\n</code></pre>');
  });

  it("replaces NUL characters", () => {
    expect(md("a\0b")).toBe("<p>a\uFFFDb</p>");
  });

  it("keeps every tag balanced and every character escaped on arbitrary input", () => {
    // Deterministic pseudo-random input from the characters that mean something to the renderer or to HTML.
    const alphabet = [
      "*", "_", "~", "`", "[", "]", "(", ")", "!", "<", ">", '"', "'", "&", "\\", "#", "-", "|", ":", " ", "  ", "\n",
      "\n\n", "a", "1.", "> ", "```", "https://x", "javascript:", "\t", "    ",
    ];
    let seed = 12345;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 3000; round++) {
      let source = "";
      for (let length = next(60); length > 0; length--) source += alphabet[next(alphabet.length)];
      expect(() => md(source), JSON.stringify(source)).not.toThrow();
    }
  });

  it("renders deep nesting and long runs of markers without failing", () => {
    expect(() => md("> ".repeat(2000) + "deep")).not.toThrow();
    expect(() => md(Array.from({ length: 200 }, (_, i) => `${" ".repeat(2 * i)}- level ${i}`).join("\n"))).not.toThrow();
    expect(() => md("[".repeat(5000) + "*_".repeat(5000) + "`".repeat(300) + "]".repeat(5000))).not.toThrow();
  });
});

describe("streaming", () => {
  const ANSWER = [
    "The function `parse_args` reads the **command line** and returns a _config_ object.",
    "",
    "1. It splits each `argv` entry on `=`:",
    "   ```python",
    "   def parse_args(argv):",
    "       return dict(a.split(\"=\", 1) for a in argv)",
    "   ```",
    "2. It checks each **key** against `KNOWN_KEYS`:",
    "   - unknown keys raise `ValueError`",
    "   - values stay ~~strings~~ *strings*",
    "",
    "| Key | Meaning |",
    "|:----|--------:|",
    "| `port` | TCP port |",
    "",
    "> **Note:** see [the docs](https://docs.python.org/3/) for `dict`.",
    "",
    "---",
    "Done.",
  ].join("\n");

  it("renders every prefix of an answer with balanced tags", () => {
    for (let end = 0; end <= ANSWER.length; end++) md(ANSWER.slice(0, end));
  });

  it("shows a cut-off fence as code while it streams", () => {
    const html = md(ANSWER.slice(0, ANSWER.indexOf("a in argv")));
    expect(html).toContain('<pre><code class="language-python">def parse_args(argv):\n    return dict(a.split(&quot;=&quot;, 1) for \n</code></pre></li>\n</ol>');
  });

  it("renders the whole answer", () => {
    expect(md(ANSWER)).toBe(
      [
        "<p>The function <code>parse_args</code> reads the <strong>command line</strong> and returns a <em>config</em> object.</p>",
        "<ol>",
        "<li>It splits each <code>argv</code> entry on <code>=</code>:",
        '<pre><code class="language-python">def parse_args(argv):\n    return dict(a.split(&quot;=&quot;, 1) for a in argv)\n</code></pre></li>',
        "<li>It checks each <strong>key</strong> against <code>KNOWN_KEYS</code>:",
        "<ul>",
        "<li>unknown keys raise <code>ValueError</code></li>",
        "<li>values stay <del>strings</del> <em>strings</em></li>",
        "</ul></li>",
        "</ol>",
        "<table>",
        "<thead>",
        '<tr><th class="align-left">Key</th><th class="align-right">Meaning</th></tr>',
        "</thead>",
        "<tbody>",
        '<tr><td class="align-left"><code>port</code></td><td class="align-right">TCP port</td></tr>',
        "</tbody>",
        "</table>",
        "<blockquote>",
        '<p><strong>Note:</strong> see <a href="https://docs.python.org/3/">the docs</a> for <code>dict</code>.</p>',
        "</blockquote>",
        "<hr>",
        "<p>Done.</p>",
      ].join("\n"),
    );
  });
});
