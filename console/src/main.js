import { createApp } from 'vue';
import {
  Button, Card, Dialog, Form, FormItem, Input, InputNumber, Loading, Option, Select, Table, Tag,
} from 'tdesign-vue-next';
import App from './App.vue';
import './style.css';

const app = createApp(App);
for (const component of [Button, Card, Dialog, Form, FormItem, Input, InputNumber, Loading,
  Option, Select, Table, Tag]) {
  app.use(component);
}
app.mount('#app');
