//! The seeded data set (see `World::seeded`): the same seed always gives the same account.

use super::{Panel, Sequence, Step, World, COMPANY_ID};
use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use serde_json::{json, Value};

const FIRST: [&str; 12] = [
    "Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabriela", "Heitor", "Isabela", "João",
    "Larissa", "Marcos",
];
const LAST: [&str; 5] = ["Silva", "Souza", "Oliveira", "Santos", "Pereira"];

/// When the seeded data set's story begins.
const SEED_START: &str = "2025-01-01T09:00:00Z";

impl World {
    /// The seeded data set, in the order its ids are drawn (changing the order changes them).
    pub(super) fn seed_data(&mut self) {
        self.last_ms = seed_start().as_millisecond();
        self.seed_lookups();
        self.seed_channels();
        self.seed_contacts();
        self.seed_sessions();
        self.seed_panels();
        self.seed_sequences();
    }

    /// `minutes` after the start, and after everything seeded before (strictly increasing).
    fn seed_time(&mut self, minutes: i64) -> Timestamp {
        let base = seed_start();
        let ms = (base.as_millisecond() + minutes * 60_000).max(self.last_ms + 1);
        self.last_ms = ms;
        Timestamp::from_millisecond(ms).unwrap_or(base)
    }

    /// Departments, agents and tags.
    fn seed_lookups(&mut self) {
        for name in ["Vendas", "Suporte", "Financeiro"] {
            let id = self.new_id();
            self.departments.push(json!({
                "id": id, "companyId": COMPANY_ID, "name": name, "description": null,
                "isDefault": name == "Suporte", "isSupervisor": false,
            }));
        }
        let deps = self.department_ids();
        for (i, name) in [
            "Alice Costa",
            "Rafael Lima",
            "Beatriz Rocha",
            "Thiago Alves",
            "Camila Dias",
            "Lucas Prado",
        ]
        .iter()
        .enumerate()
        {
            let id = self.new_id();
            let user_id = self.new_id();
            let first = name.split(' ').next().unwrap_or(name).to_lowercase();
            self.agents.push(json!({
                "id": id, "userId": user_id, "name": name, "shortName": first,
                "email": format!("{first}@example.com"), "phoneNumber": format!("+55|1190000000{i}"),
                "departments": [{ "departmentId": deps[i % deps.len()] }],
            }));
        }
        for name in [
            "vip",
            "lead",
            "cliente",
            "inadimplente",
            "suporte",
            "novo",
            "b2b",
            "churn",
        ] {
            let id = self.new_id();
            self.tags.push(json!({ "id": id, "name": name }));
        }
    }

    /// Channels, templates, chatbots and contact fields.
    fn seed_channels(&mut self) {
        let deps = self.department_ids();
        let wa = self.new_id();
        let ig = self.new_id();
        self.channels.push(json!({
            "id": wa, "type": "CLOUDAPI_WHATSAPP", "number": "5511900000000", "displayName": "Atendimento",
            "identity": { "humanId": "+55|11900000000", "platform": "WhatsApp", "provider": "CLOUDAPI" },
        }));
        self.channels.push(json!({
            "id": ig, "type": "INSTAGRAM", "number": null, "displayName": "@loja",
            "identity": { "humanId": "@loja", "platform": "Instagram", "provider": "META" },
        }));
        for (name, text, params, file_type, status) in [
            (
                "boas_vindas",
                "Olá {{1}}, seu pedido {{2}} foi recebido.",
                vec!["1", "2"],
                "UNDEFINED",
                "Approved",
            ),
            (
                "lembrete",
                "Olá! Podemos continuar o seu atendimento?",
                vec![],
                "UNDEFINED",
                "Approved",
            ),
            (
                "promo_imagem",
                "Oferta da semana, {{1}}!",
                vec!["1"],
                "IMAGE",
                "Approved",
            ),
            ("rascunho", "Em revisão", vec![], "UNDEFINED", "InRevision"),
        ] {
            let id = self.new_id();
            let params: Vec<Value> = params
                .iter()
                .map(|p| json!({ "name": p, "templateId": id }))
                .collect();
            self.templates.push(json!({
                "id": id, "channelId": wa, "name": name, "internalName": name, "text": text,
                "footerText": null, "status": status, "channelType": "CLOUDAPI_WHATSAPP",
                "type": ["CAMPAIGN"], "params": params, "fileType": file_type,
                "categoryId": null, "categoryName": "MARKETING", "active": true, "archived": false,
                "quickReplyAlias": null, "rejectedDescription": null,
            }));
        }
        for (name, kind) in [
            ("Pesquisa NPS", "Automation"),
            ("Cobrança", "Automation"),
            ("Menu inicial", "Reactive"),
        ] {
            let id = self.new_id();
            let key = self.new_id();
            let dep = deps[self.rng.random_range(0..deps.len())].clone();
            self.chatbots.push(json!({
                "id": id, "key": key, "name": name, "type": kind, "channelIds": [wa],
                "defaultDepartmentId": dep, "publishStatus": "PUBLISHED",
                "automationUsage": if kind == "Automation" { json!("GENERAL") } else { Value::Null }, "archived": false,
            }));
        }
        self.contact_custom_fields = vec![
            json!({"key": "cpf", "name": "CPF", "type": "STRING", "options": []}),
            json!({"key": "plano", "name": "Plano", "type": "SINGLESELECT", "options": [{"id": "1", "name": "Básico"}, {"id": "2", "name": "Pro"}]}),
        ];
    }

    /// 60 contacts with names, phones, tags.
    fn seed_contacts(&mut self) {
        for i in 0..60_i64 {
            let created = self.seed_time(i * 10);
            let first = FIRST[usize::try_from(i).unwrap_or(0) % FIRST.len()];
            let last = LAST[usize::try_from(i / 12).unwrap_or(0) % LAST.len()];
            let digits = format!(
                "55119{:08}",
                self.rng.random_range(10_000_000..99_999_999_u32)
            );
            let status = match i {
                _ if i % 20 == 19 => "BLOCKED",
                _ if i % 15 == 14 => "ARCHIVED",
                _ => "ACTIVE",
            };
            let tag = self.pick(&self.tags.clone()).clone();
            let c = self.blank_contact(created);
            let id = c.id.clone();
            self.contacts.insert(id.clone(), c);
            let c = &mut self.contacts[&id];
            c.name = Some(format!("{first} {last}"));
            c.email = Some(format!(
                "{}.{}{i}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            ));
            c.status = status.into();
            c.origin = "IMPORTED".into();
            c.tag_ids = vec![World::id_of(&tag)];
            c.tag_names = vec![tag["name"].as_str().unwrap_or_default().to_owned()];
            self.set_phone(&id, &digits);
        }
    }

    /// 120 sessions in mixed statuses with their messages.
    fn seed_sessions(&mut self) {
        let deps = self.department_ids();
        let contact_ids: Vec<String> = self.contacts.keys().cloned().collect();
        for i in 0..120_i64 {
            let created = self.seed_time(1000 + i * 7);
            let dep = deps[usize::try_from(i).unwrap_or(0) % deps.len()].clone();
            let status = match self.rng.random_range(0..10) {
                0 => "STARTED",
                1 | 2 => "PENDING",
                3..=5 => "IN_PROGRESS",
                6..=8 => "COMPLETED",
                _ => "HIDDEN",
            };
            let contact = contact_ids[usize::try_from(i).unwrap_or(0) % contact_ids.len()].clone();
            let mut s = self.blank_session(created, contact);
            s.department_id = Some(dep.clone());
            s.status = status.into();
            if matches!(status, "IN_PROGRESS" | "COMPLETED") {
                let agents = self.agents_of(&dep);
                s.user_id = agents
                    .get(self.rng.random_range(0..agents.len().max(1)))
                    .cloned();
            }
            if status == "COMPLETED" {
                s.end_at = Some(created + SignedDuration::from_mins(45));
                s.window_status = "EXPIRED".into();
            }
            let sid = s.id.clone();
            self.sessions.insert(sid.clone(), s);
            let n = self.rng.random_range(1..=3);
            for k in 0..n {
                let at = self.seed_time(1000 + i * 7 + k + 1);
                let text = [
                    "Olá, preciso de ajuda",
                    "Qual o status do meu pedido?",
                    "Obrigado!",
                ][usize::try_from(k).unwrap_or(0) % 3];
                let mut m = self.blank_message(at, &sid);
                m.direction = if k % 2 == 0 { "TO_HUB" } else { "FROM_HUB" }.into();
                m.status = if k % 2 == 0 { "DELIVERED" } else { "READ" }.into();
                m.origin = "DEFAULT".into();
                m.text = Some(text.into());
                let s = &mut self.sessions[&sid];
                s.last_message_text = Some(text.into());
                s.last_interaction_date = Some(at);
                if k % 2 == 0 {
                    s.last_message_in = Some(at);
                } else {
                    s.last_message_out = Some(at);
                }
                self.messages.insert(m.id.clone(), m);
            }
        }
    }

    /// 2 panels with steps, cards and notes.
    fn seed_panels(&mut self) {
        let contact_ids: Vec<String> = self.contacts.keys().cloned().collect();
        for (title, kind, steps) in [
            (
                "Funil de vendas",
                "SALES",
                vec!["Prospecção", "Proposta", "Negociação", "Fechado"],
            ),
            (
                "Suporte N2",
                "MANAGEMENT",
                vec!["A fazer", "Fazendo", "Feito"],
            ),
        ] {
            let created = self.seed_time(5000);
            let pid = self.new_id();
            let tags: Vec<Value> = ["quente", "frio"]
                .iter()
                .map(|t| json!({ "id": self.new_id(), "panelId": pid, "name": t, "nameColor": "#fff", "bgColor": "#333" }))
                .collect();
            let key = title
                .chars()
                .filter(char::is_ascii_uppercase)
                .collect::<String>();
            self.panels.insert(
                pid.clone(),
                Panel {
                    id: pid.clone(),
                    created_at: created,
                    updated_at: created,
                    title: title.into(),
                    description: None,
                    kind: kind.into(),
                    key,
                    archived: false,
                    tags,
                    custom_fields: vec![
                        json!({"key": "origem", "name": "Origem", "type": "STRING"}),
                        json!({"key": "dados", "name": "Dados", "type": "GROUP"}),
                    ],
                    card_counter: 0,
                },
            );
            let n = steps.len();
            for (pos, st) in steps.iter().enumerate() {
                let id = self.new_id();
                self.steps.insert(
                    id.clone(),
                    Step {
                        id,
                        panel_id: pid.clone(),
                        title: (*st).into(),
                        position: u32::try_from(pos).unwrap_or(0),
                        is_initial: pos == 0,
                        is_final: pos + 1 == n,
                        archived: false,
                    },
                );
            }
            let step_ids: Vec<String> = self
                .steps
                .values()
                .filter(|s| s.panel_id == pid)
                .map(|s| s.id.clone())
                .collect();
            for c in 0..10_usize {
                let created = self.seed_time(5001);
                let step = step_ids[c % step_ids.len()].clone();
                let contact = contact_ids[(c * 5) % contact_ids.len()].clone();
                let card = self.new_card(created, &step, format!("Oportunidade {}", c + 1));
                let cid = card.id.clone();
                self.cards.insert(cid.clone(), card);
                let card = &mut self.cards[&cid];
                card.contact_ids = vec![contact];
                card.monetary_amount = Some(f64::from(u32::try_from(c).unwrap_or(0) + 1) * 250.0);
                if c % 4 == 0 {
                    let at = self.seed_time(5002);
                    let note = self.new_note(
                        at,
                        &cid,
                        Some(format!("Primeiro contato feito ({})", c + 1)),
                        vec![],
                    );
                    self.notes.insert(note.id.clone(), note);
                }
            }
        }
    }

    /// 3 sequences, a few contacts enrolled in the first.
    fn seed_sequences(&mut self) {
        let contact_ids: Vec<String> = self.contacts.keys().cloned().collect();
        for name in ["Boas-vindas", "Recuperação de carrinho", "Pós-venda"] {
            let created = self.seed_time(6000);
            let id = self.new_id();
            self.sequences.insert(
                id.clone(),
                Sequence {
                    id,
                    created_at: created,
                    updated_at: created,
                    name: name.into(),
                    active: true,
                    enabled: true,
                },
            );
        }
        let first_seq = self.sequences.keys().next().cloned().unwrap_or_default();
        for c in contact_ids.iter().take(5) {
            let at = self.seed_time(6001);
            self.enrol(at, &first_seq, c, "USER_SINGLE");
        }
    }
}

fn seed_start() -> Timestamp {
    SEED_START.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}
