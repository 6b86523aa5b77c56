import { createApp } from 'vue';
// only the components the screens use (tree-shaken, each with its own stylesheet)
import { Button, Card, Dialog, Input, Loading, Tag } from 'tdesign-vue-next';
import 'tdesign-vue-next/es/style/index.css';
import App from './App.vue';
import DataTable from './components/DataTable.vue';
import './style.css';

const app = createApp(App);
for (const component of [Button, Card, Dialog, Input, Loading, Tag]) {
  app.use(component);
}
app.component('DataTable', DataTable);
app.mount('#app');
