/**
 * The screens of a shared space: the agreements (with the level in force and what waits
 * for whom), one item, a new item, the check-in and the crisis plan.
 *
 * Wording follows DESIGN.md 4a: current preferences, never permission; no pressure, no
 * counts; a pause needs no reason; pending items wait calmly for each person's own time.
 */
import { h, formValues, levelChip, KIND_WORDS, LEVEL_WORDS } from './dom.js';
import { affirm, agreementView, changeItem, pause, profileName, proposeItem, resume } from '../app/agreements.js';
import { encodeVoiceRecord, encodePlanStep, PLAN_SECTIONS } from '../protocol/voice-records.js';
import { readPlanSteps, readPlanText } from '../app/documents.js';
import { fromHex, randomBytes, toHex } from '../protocol/crypto.js';

const SECTION_WORDS = { 'de-escalation': 'Calming down', 'cooling-off': 'Cooling off', 'return-to-intimacy': 'Coming back together' };

function nameOf(replica, memberHex) {
  if (memberHex === replica.memberHex) return 'you';
  return profileName(replica, memberHex) ?? 'your partner';
}

/** The pause control, always one tap away. */
export function pauseBar(app, ui, state) {
  const view = agreementView(state.replica);
  if (view.pausedByMe) {
    return h(
      'div',
      { class: 'pause-bar paused', role: 'status' },
      h('p', {}, 'You paused. Everything is “no” for now.'),
      h('button', { class: 'resume', onclick: () => app.act(state, (r) => resume(r)) }, 'Resume'),
    );
  }
  return h(
    'div',
    { class: `pause-bar${view.paused.length > 0 ? ' paused' : ''}` },
    view.paused.length > 0 ? h('p', { role: 'status' }, 'A pause is on. Everything is “no” for now.') : null,
    h('button', { class: 'pause', onclick: () => app.act(state, (r) => pause(r)) }, 'Pause everything'),
  );
}

export function itemsView(app, ui, state) {
  const { replica } = state;
  const view = agreementView(replica);
  const list = h('ul', { class: 'items' });
  for (const item of view.items) {
    const waiting = [...item.waitingFor.values()].flat().filter((m, i, all) => all.indexOf(m) === i);
    let note = null;
    if (item.status === 'pending') {
      note =
        item.needsMe.length > 0
          ? 'Waiting for your word, whenever you are ready.'
          : `Waiting for ${waiting.map((m) => nameOf(replica, m)).join(' and ')}.`;
    }
    list.append(
      h(
        'li',
        { class: `item ${item.status}`, 'data-title': item.title, 'data-level': item.level, 'data-status': item.status, onclick: () => ui.go('item', item.item) },
        h('div', { class: 'item-head' }, h('span', { class: 'title' }, item.title), levelChip(item.level)),
        h('div', { class: 'kind' }, KIND_WORDS[item.kind]),
        note ? h('div', { class: 'pending-note' }, note) : null,
      ),
    );
  }
  return h(
    'section',
    {},
    h('p', { class: 'reminder' }, 'These are current preferences, not permission. A “no” in the moment always counts.'),
    view.items.length === 0 ? h('p', { class: 'empty' }, 'Nothing here yet. You can add a first agreement.') : list,
    h('button', { class: 'primary', onclick: () => ui.go('add') }, 'Add an agreement'),
  );
}

const levelButtons = (name, current) =>
  h(
    'fieldset',
    { class: 'levels' },
    h('legend', {}, 'Level'),
    ['no', 'ask', 'yes'].map((level) =>
      h('label', { class: `level-${level}` }, h('input', { type: 'radio', name, value: level, checked: level === current, required: true }), LEVEL_WORDS[level]),
    ),
  );

const kindSelect = (current) =>
  h('label', {}, 'Kind', h('select', { name: 'kind' }, Object.entries(KIND_WORDS).map(([kind, words]) => h('option', { value: kind, selected: kind === current ? true : null }, words))));

export function addView(app, ui, state) {
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (event) => {
        event.preventDefault();
        const v = formValues(form);
        await app.act(state, (r) => proposeItem(r, { kind: v.kind, level: v.level, title: v.title.trim(), details: v.details }));
        ui.go('items');
      },
    },
    h('h2', {}, 'A new agreement'),
    h('label', {}, 'What it is about', h('input', { name: 'title', required: true, maxlength: 200 })),
    h('label', {}, 'Details (optional)', h('textarea', { name: 'details', rows: 3 })),
    kindSelect('limit'),
    levelButtons('level', 'no'),
    h('p', { class: 'note' }, 'A “no” or a narrowing counts at once. A widening counts when everyone agrees to it.'),
    h('button', { class: 'primary', type: 'submit' }, 'Save'),
    h('button', { type: 'button', onclick: () => ui.go('items') }, 'Back'),
  );
  return form;
}

export function itemView(app, ui, state, itemHex) {
  const { replica } = state;
  const item = agreementView(replica).items.find((candidate) => candidate.item === itemHex);
  if (!item) return h('p', {}, 'This agreement is not here (yet).');
  const heads = item.heads.map((head) =>
    h(
      'div',
      { class: 'version', 'data-version': toHex(head.id) },
      h('div', { class: 'item-head' }, h('strong', {}, head.title), levelChip(head.level)),
      head.details ? h('p', {}, head.details) : null,
      h('p', { class: 'note' }, `Written by ${nameOf(replica, toHex(head.author))}.`),
      item.needsMe.includes(head)
        ? h('button', { class: 'primary affirm', onclick: () => app.act(state, (r) => affirm(r, head)) }, 'I agree to this version')
        : null,
    ),
  );
  const form = h(
    'form',
    {
      class: 'change',
      onsubmit: async (event) => {
        event.preventDefault();
        const v = formValues(form);
        await app.act(state, (r) => changeItem(r, item, { level: v.level, title: v.title.trim(), details: v.details }));
      },
    },
    h('h3', {}, 'Change it'),
    h('label', {}, 'What it is about', h('input', { name: 'title', required: true, value: item.title })),
    h('label', {}, 'Details', h('textarea', { name: 'details', rows: 3 }, item.heads[0].details)),
    levelButtons('level', item.heads[0].level),
    h('button', { type: 'submit' }, 'Save as a new version'),
  );
  return h(
    'section',
    { class: 'card', 'data-item': item.item },
    h('h2', {}, item.title),
    h('p', {}, 'In force now: ', levelChip(item.level), item.status === 'agreed' ? ' — agreed by everyone.' : ' — waiting.'),
    heads,
    form,
    h('button', { type: 'button', onclick: () => ui.go('items') }, 'Back'),
  );
}

export function checkinView(app, ui, state) {
  // Answers live in my private space, which must be spoken for by the same member.
  const own = app.privateSpace();
  const privateSpace = own && own.replica.memberHex === state.replica.memberHex ? own : null;
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (event) => {
        event.preventDefault();
        const v = formValues(form);
        const record = encodeVoiceRecord({
          v: 1,
          type: 'checkin',
          member: fromHex(state.replica.memberHex),
          id: randomBytes(16),
          at: Date.now(),
          safety: Number(v.safety),
          feels_safe: v.feels_safe,
          triggering: v.triggering,
          would_help: v.would_help,
        });
        if (!privateSpace && !v.share) {
          // Never put answers meant to stay private where a partner can read them.
          ui.say('This device has no private space for answers kept just for you. You can share them, or answer on your first device.');
          return;
        }
        if (privateSpace) await app.act(privateSpace, (r) => r.writeVoice([record]));
        if (v.share) await app.act(state, (r) => r.writeVoice([record]));
        ui.say(v.share ? 'Saved, and shared with your partner.' : 'Saved, just for you.');
        ui.go('items');
      },
    },
    h('h2', {}, 'Check-in'),
    h(
      'fieldset',
      { class: 'safety' },
      h('legend', {}, 'How safe do you feel right now?'),
      [1, 2, 3, 4, 5].map((n) => h('label', {}, h('input', { type: 'radio', name: 'safety', value: n, required: true }), String(n))),
      h('p', { class: 'note' }, '1 is not safe at all, 5 is fully safe.'),
    ),
    h('label', {}, 'What feels safe', h('textarea', { name: 'feels_safe', rows: 2 })),
    h('label', {}, 'What feels hard or triggering', h('textarea', { name: 'triggering', rows: 2 })),
    h('label', {}, 'What would help', h('textarea', { name: 'would_help', rows: 2 })),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'share' }), 'Share these answers with my partner'),
    h('button', { class: 'primary', type: 'submit' }, 'Save check-in'),
  );
  return form;
}

/** Replace a Y.Text's content with `next` by one splice, so concurrent edits merge. */
function spliceText(text, next) {
  const current = text.toString();
  let start = 0;
  while (start < current.length && start < next.length && current[start] === next[start]) start += 1;
  let end = 0;
  while (end < current.length - start && end < next.length - start && current[current.length - 1 - end] === next[next.length - 1 - end]) end += 1;
  if (current.length - start - end > 0) text.delete(start, current.length - start - end);
  if (next.length - start - end > 0) text.insert(start, next.slice(start, next.length - end));
}

export function planView(app, ui, state) {
  const { replica } = state;
  const steps = readPlanSteps(replica.documents);
  const wording = h(
    'form',
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const next = formValues(wording).plan;
        await app.act(state, (r) => r.writeShared((doc) => spliceText(doc.getText('plan'), next)));
        ui.say('The plan is saved.');
      },
    },
    h('label', {}, 'Our plan, in our words', h('textarea', { name: 'plan', rows: 6, class: 'plan-text' }, readPlanText(replica.documents))),
    h('button', { type: 'submit' }, 'Save the plan'),
  );
  const addStep = h(
    'form',
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const v = formValues(addStep);
        const id = randomBytes(16);
        const position = steps.filter((s) => s.section === v.section).length;
        const minutes = v.section === 'cooling-off' && v.minutes ? Number(v.minutes) : null;
        const bytes = encodePlanStep({ id, section: v.section, text: v.text.trim(), position, by: fromHex(replica.memberHex), at: Date.now(), minutes });
        await app.act(state, (r) => r.writeShared((doc) => doc.getMap('plan_steps').set(toHex(id), bytes)));
      },
    },
    h('label', {}, 'Section', h('select', { name: 'section' }, PLAN_SECTIONS.map((s) => h('option', { value: s }, SECTION_WORDS[s])))),
    h('label', {}, 'Step', h('input', { name: 'text', required: true })),
    h('label', {}, 'Minutes (for a cooling-off period)', h('input', { name: 'minutes', type: 'number', min: 1, max: 10080 })),
    h('button', { type: 'submit' }, 'Add this step'),
  );
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, 'Crisis plan'),
    wording,
    PLAN_SECTIONS.map((section) => {
      const mine = steps.filter((s) => s.section === section);
      return mine.length === 0
        ? null
        : h('div', { class: 'plan-section' }, h('h3', {}, SECTION_WORDS[section]), h('ol', {}, mine.map((s) => h('li', {}, s.text, s.minutes ? ` (${s.minutes} minutes)` : ''))));
    }),
    h('h3', {}, 'Add a step'),
    addStep,
  );
}
