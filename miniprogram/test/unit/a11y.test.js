// Accessibility: status tag colours meet WCAG AA contrast, interactive elements carry an
// aria-label (or visible text), and 长辈模式 enlarges text and persists.
const fs = require('fs');
const path = require('path');
const h = require('../helpers');
const elderMode = require('../../utils/elder-mode');

const ROOT = path.resolve(__dirname, '..', '..');
const app = JSON.parse(fs.readFileSync(path.join(ROOT, 'app.json'), 'utf8'));
const wxss = fs.readFileSync(path.join(ROOT, 'app.wxss'), 'utf8');

function luminance(hex) {
  const rgb = hex.replace('#', '').match(/../g).map((x) => parseInt(x, 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
}

function contrast(a, b) {
  const [l1, l2] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (l1 + 0.05) / (l2 + 0.05);
}

const pageId = h.loadPage('me');

describe('accessibility', () => {
  const statuses = ['pending', 'pending_payment', 'booked', 'checked_in', 'completed', 'cancelled', 'no_show',
    'open', 'full', 'stopped', 'closed', 'not_released'];

  test.each(statuses)('status tag %s has text/background contrast >= 4.5:1', (status) => {
    const rule = new RegExp(`\\.status-${status} \\{ color: (#[0-9a-f]{6}); background: (#[0-9a-f]{6}); \\}`, 'i').exec(wxss);
    expect(rule).not.toBe(null);
    expect(contrast(rule[1], rule[2])).toBeGreaterThanOrEqual(4.5);
  });

  test('the contrast check itself: TDesign\'s light success tag would fail it', () => {
    expect(contrast('#2ba471', '#e3f9e9')).toBeLessThan(4.5);
    expect(contrast('#000000', '#ffffff')).toBeCloseTo(21, 0);
  });

  test('status tags are rendered with those classes, not TDesign light tags', () => {
    ['appointments', 'appointment-detail', 'staff-today', 'staff-sessions'].forEach((name) => {
      const wxml = fs.readFileSync(path.join(ROOT, 'pages', name, 'index.wxml'), 'utf8');
      expect(wxml).toMatch(/class="status-tag status-\{\{/);
      expect(wxml).not.toMatch(/statusTheme/);
    });
  });

  test('tap targets without visible text of their own carry an aria-label', () => {
    const missing = [];
    app.pages.concat(['components/privacy-popup/index']).forEach((page) => {
      const wxml = fs.readFileSync(path.join(ROOT, `${page}.wxml`), 'utf8');
      const tags = wxml.match(/<(view|text|button|t-button|t-cell)\b[^>]*(bindtap|bind:tap|bind:click|catchtap)=[^>]*>/g) || [];
      tags.forEach((tag) => {
        const isButtonWithText = /^<(t-button|button)\b/.test(tag); // labelled by their text
        const isCellWithTitle = /^<t-cell\b/.test(tag) && /\btitle="/.test(tag);
        if (!/aria-label="/.test(tag) && !isButtonWithText && !isCellWithTitle) missing.push(`${page}: ${tag.slice(0, 80)}`);
      });
    });
    expect(missing).toEqual([]);
  });

  test('长辈模式 persists in storage and enlarges the text', async () => {
    const fake = h.fakeWx({});
    expect(wxss).toMatch(/\.elder \{ font-size: 36rpx; \}/);
    const comp = await h.mount(pageId);
    expect(comp.data.elder).toBe(false);
    h.clickCell(comp.querySelector('#toggle-elder'));
    await h.flush();
    expect(comp.data.elder).toBe(true);
    expect(fake.storage.get(elderMode.KEY)).toBe(true);
    expect(comp.querySelector('.container').dom.className).toContain('elder');
    // a page opened later starts in 长辈模式
    const again = await h.mount(pageId);
    expect(again.data.elder).toBe(true);
    h.clickCell(again.querySelector('#toggle-elder'));
    await h.flush();
    expect(fake.storage.get(elderMode.KEY)).toBe(false);
  });
});
